//! What `creature exec` and `creature shell` ask a machine to run, checked
//! before anything is attached: the command, its environment, the user and
//! the working directory. Pure: the backends carry it out.

use crate::error::{Error, Result};

/// The environment every command starts from (the caller's own is never
/// passed in: it is another machine's).
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who a command runs as, after names are looked up in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One command to run in a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// argv, argv[0] being the program (looked up in PATH).
    pub argv: Vec<String>,
    /// KEY=VALUE, complete: what the command's environment is.
    pub env: Vec<String>,
    /// None: the guest's root.
    pub user: Option<User>,
    pub cwd: Option<String>,
    /// A terminal is allocated and the caller's is put into raw mode.
    pub tty: bool,
}

/// `--env KEY=VALUE`: a key of letters, digits and `_`, not starting with a digit.
pub fn check_env(kv: &str) -> Result<(&str, &str)> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| Error::invalid(format!("--env must be KEY=VALUE, got {kv:?} (no '=')")))?;
    let ok = !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(Error::invalid(format!(
            "--env key must be letters, digits and '_', not starting with a digit, got {k:?}"
        )));
    }
    if v.contains('\0') {
        return Err(Error::invalid(format!("--env {k} contains a NUL byte")));
    }
    Ok((k, v))
}

/// The environment a command gets: a fixed base, the terminal type when it
/// has one, then the user's `--env` (checked by `check_env`; they win).
pub fn environment(user_env: &[(String, String)], home: &str, term: Option<&str>) -> Vec<String> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), BASE_PATH.into()),
        ("HOME".into(), home.into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    if let Some(t) = term {
        env.push(("TERM".into(), t.into()));
    }
    for (k, v) in user_env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `--user NAME|UID[:GID]` against the guest's /etc/passwd text.
pub fn resolve_user(spec: &str, passwd: &str) -> Result<User> {
    let (who, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let by_uid = |uid: u32| {
        entries
            .iter()
            .find(|f| f[2].parse::<u32>().ok() == Some(uid))
    };
    let mut user = match who.parse::<u32>() {
        Ok(uid) => match by_uid(uid) {
            Some(f) => User {
                uid,
                gid: f[3].parse().unwrap_or(uid),
                home: f[5].to_string(),
            },
            // A uid the guest does not name is still a uid.
            None => User {
                uid,
                gid: uid,
                home: "/".into(),
            },
        },
        Err(_) => {
            let f = entries.iter().find(|f| f[0] == who).ok_or_else(|| {
                Error::not_found(format!(
                    "--user {who:?}: no such user in the machine's /etc/passwd"
                ))
            })?;
            User {
                uid: f[2].parse().map_err(|_| {
                    Error::invalid(format!(
                        "the machine's /etc/passwd has a bad uid for {who:?}"
                    ))
                })?,
                gid: f[3].parse().unwrap_or(0),
                home: f[5].to_string(),
            }
        }
    };
    if let Some(g) = group {
        user.gid = g.parse().map_err(|_| {
            Error::invalid(format!("--user group must be a numeric gid, got {g:?}"))
        })?;
    }
    Ok(user)
}

/// The exit status a command's wait status becomes, as a shell reports it.
pub fn exit_status(wait_status: i32) -> i32 {
    if libc::WIFEXITED(wait_status) {
        libc::WEXITSTATUS(wait_status)
    } else if libc::WIFSIGNALED(wait_status) {
        128 + libc::WTERMSIG(wait_status)
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:34:www:/var/www:/bin/false\n";

    #[test]
    fn users_by_name_uid_and_group() {
        assert_eq!(
            resolve_user("www", PASSWD).unwrap(),
            User {
                uid: 33,
                gid: 34,
                home: "/var/www".into()
            }
        );
        assert_eq!(resolve_user("33", PASSWD).unwrap().gid, 34);
        assert_eq!(
            resolve_user("1000:5", PASSWD).unwrap(),
            User {
                uid: 1000,
                gid: 5,
                home: "/".into()
            }
        );
        assert_eq!(
            resolve_user("nobody", PASSWD).unwrap_err().kind(),
            Kind::NotFound
        );
        assert_eq!(
            resolve_user("www:staff", PASSWD).unwrap_err().kind(),
            Kind::Invalid
        );
    }

    #[test]
    fn environment_is_fixed_then_the_users() {
        let user: Vec<(String, String)> = ["PATH=/x", "A=b=c"]
            .iter()
            .map(|kv| {
                check_env(kv)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .unwrap()
            })
            .collect();
        let env = environment(&user, "/root", Some("xterm"));
        assert_eq!(
            env,
            [
                "HOME=/root",
                "LANG=C.UTF-8",
                "TERM=xterm",
                "PATH=/x",
                "A=b=c"
            ]
        );
        for bad in ["NOEQUALS", "=v", "1A=v", "A-B=v", "A B=v"] {
            assert_eq!(check_env(bad).unwrap_err().kind(), Kind::Invalid, "{bad}");
        }
    }

    #[test]
    fn wait_statuses_become_shell_exit_codes() {
        assert_eq!(exit_status(3 << 8), 3);
        assert_eq!(exit_status(9), 137);
        assert_eq!(exit_status(0), 0);
    }
}
