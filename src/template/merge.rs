//! Composition: `extends` deep merge, `--set key.path=value` overrides and
//! `${name}` variables, all on TOML values before the final type check.

use toml::{Table, Value};

use crate::error::{Error, Result};

/// Merge `over` onto `base`: tables merge key by key, everything else
/// (including arrays such as `[[disk]]`) is replaced whole.
pub fn deep_merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Apply one `key.path=value`. Numeric segments index arrays (`nic.0.network`);
/// the index one past the end appends. The value is read as a TOML value when
/// it is one (`2`, `true`, `"x"`), else as a string.
pub fn apply_set(root: &mut Table, assignment: &str) -> Result<()> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| Error::invalid(format!("--set {assignment:?}: expected KEY.PATH=VALUE")))?;
    let segs: Vec<&str> = path.trim().split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(Error::invalid(format!(
            "--set {assignment:?}: empty key in {path:?}"
        )));
    }
    let value = parse_value(raw.trim());
    let bad = |why: String| Error::invalid(format!("--set {assignment:?}: {why}"));
    let mut cur: &mut Value = {
        // Walk from a temporary table root so every level is a Value.
        let first = segs[0];
        if segs.len() == 1 {
            root.insert(first.to_string(), value);
            return Ok(());
        }
        root.entry(first.to_string())
            .or_insert_with(|| container_for(segs[1]))
    };
    for (i, seg) in segs.iter().enumerate().skip(1) {
        let last = i == segs.len() - 1;
        let next_container = || {
            if last {
                None
            } else {
                Some(container_for(segs[i + 1]))
            }
        };
        cur = match cur {
            Value::Table(t) => {
                if last {
                    t.insert(seg.to_string(), value);
                    return Ok(());
                }
                t.entry(seg.to_string())
                    .or_insert_with(|| next_container().unwrap())
            }
            Value::Array(a) => {
                let idx: usize = seg
                    .parse()
                    .map_err(|_| bad(format!("{seg:?} indexes a list and must be a number")))?;
                if idx > a.len() {
                    return Err(bad(format!(
                        "index {idx} is past the end of a list of {}",
                        a.len()
                    )));
                }
                if idx == a.len() {
                    a.push(next_container().unwrap_or(Value::Boolean(false)));
                }
                if last {
                    a[idx] = value;
                    return Ok(());
                }
                &mut a[idx]
            }
            _ => {
                return Err(bad(format!(
                    "{:?} is not a table or list",
                    segs[..i].join(".")
                )))
            }
        };
    }
    Ok(())
}

fn container_for(next_seg: &str) -> Value {
    if next_seg.parse::<usize>().is_ok() {
        Value::Array(Vec::new())
    } else {
        Value::Table(Table::new())
    }
}

fn parse_value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

/// Replace `${name}` and `${name:-default}` in every string outside
/// `[variables]`, from the merged `[variables]` table.
pub fn substitute(root: &mut Table) -> Result<()> {
    let vars: Table = match root.get("variables") {
        Some(Value::Table(t)) => t.clone(),
        Some(_) => return Err(Error::invalid("`variables` must be a table of strings")),
        None => Table::new(),
    };
    for (k, v) in root.iter_mut() {
        if k != "variables" {
            walk(v, &vars, k)?;
        }
    }
    Ok(())
}

fn walk(v: &mut Value, vars: &Table, path: &str) -> Result<()> {
    match v {
        Value::String(s) => *s = expand(s, vars, path)?,
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                walk(x, vars, &format!("{path}.{i}"))?;
            }
        }
        Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                walk(x, vars, &format!("{path}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(s: &str, vars: &Table, path: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| {
            Error::invalid(format!("{path}: unterminated variable reference in {s:?}"))
        })?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let value = match (vars.get(name), default) {
            (Some(Value::String(v)), _) => v.clone(),
            (Some(other), _) => other.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(Error::invalid(format!(
                    "{path}: variable ${{{name}}} has no value; define it under [variables] or pass --set variables.{name}=VALUE"
                )))
            }
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn tables_merge_and_arrays_replace() {
        let mut base = t(
            "cpus = 1\n[boot]\ncmdline = \"a\"\nfirmware = \"bios\"\n[[nic]]\nnetwork = \"x\"\n",
        );
        deep_merge(
            &mut base,
            t("[boot]\ncmdline = \"b\"\n[[nic]]\nnetwork = \"y\"\n[[nic]]\nnetwork = \"z\"\n"),
        );
        assert_eq!(base["cpus"].as_integer(), Some(1));
        assert_eq!(base["boot"]["cmdline"].as_str(), Some("b"));
        assert_eq!(base["boot"]["firmware"].as_str(), Some("bios"));
        assert_eq!(base["nic"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn set_types_values_and_indexes_lists() {
        let mut root = t("[[nic]]\nnetwork = \"a\"\n");
        apply_set(&mut root, "cpus=2").unwrap();
        apply_set(&mut root, "nic.0.network=lan").unwrap();
        apply_set(&mut root, "nic.1.network=wan").unwrap();
        apply_set(&mut root, "boot.cmdline=console=ttyS0 quiet").unwrap();
        assert_eq!(root["cpus"].as_integer(), Some(2));
        assert_eq!(root["nic"][0]["network"].as_str(), Some("lan"));
        assert_eq!(root["nic"][1]["network"].as_str(), Some("wan"));
        assert_eq!(
            root["boot"]["cmdline"].as_str(),
            Some("console=ttyS0 quiet")
        );
        assert!(apply_set(&mut root, "nic.5.network=x").is_err());
        assert!(apply_set(&mut root, "cpus.x=1").is_err());
        assert!(apply_set(&mut root, "novalue").is_err());
    }

    #[test]
    fn variables_with_defaults() {
        let mut root = t("[variables]\nrelease = \"bookworm\"\n[rootfs]\nrelease = \"${release}\"\nmirror = \"${mirror:-http://deb.debian.org/debian}\"\n");
        substitute(&mut root).unwrap();
        assert_eq!(root["rootfs"]["release"].as_str(), Some("bookworm"));
        assert_eq!(
            root["rootfs"]["mirror"].as_str(),
            Some("http://deb.debian.org/debian")
        );
        let mut root = t("description = \"${nope}\"\n");
        let e = substitute(&mut root).unwrap_err();
        assert!(e.message().contains("${nope}"), "{}", e.message());
    }
}
