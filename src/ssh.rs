//! `exec` and `shell` on a VM over ssh: the way in for a guest without the
//! QEMU guest agent, and for a terminal (which the agent cannot give). The
//! config drive authorized creature's own per-machine key for the image's
//! default user. Pure: the ssh argument vector and the remote command.
//!
//! ssh hands the remote side one command line for the user's shell, so
//! each word is quoted for a POSIX shell here; nothing of the caller's is
//! ever interpreted there.

use crate::backend::ExecSpec;

/// `s` as one word of a POSIX shell command line.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,@%+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command line the guest's shell runs for `spec`: the working
/// directory, the user (through sudo), the environment, then the command
/// or a login shell.
pub fn remote_command(spec: &ExecSpec) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(d) = &spec.cwd {
        parts.push(format!("cd {} &&", quote(d)));
    }
    parts.push("exec".into());
    if let Some(u) = &spec.user {
        parts.extend(["sudo", "-n", "-u"].map(String::from));
        parts.push(quote(u));
        if spec.argv.is_empty() {
            // The user's own login shell, in their home.
            parts.push("-i".into());
            return parts.join(" ");
        }
        parts.push("--".into());
    }
    if !spec.env.is_empty() || spec.argv.is_empty() {
        parts.push("env".into());
        for (k, v) in &spec.env {
            parts.push(quote(&format!("{k}={v}")));
        }
    }
    if spec.argv.is_empty() {
        // The login shell of the user ssh logged in as.
        parts.push("\"${SHELL:-/bin/sh}\" -l".into());
    } else {
        parts.extend(spec.argv.iter().map(|a| quote(a)));
    }
    parts.join(" ")
}

/// Where and how to reach the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub user: String,
    pub ip: String,
    pub key: String,
    pub known_hosts: String,
}

/// ssh's arguments. Host keys are learnt on first use into the machine's
/// own known_hosts (emptied whenever its drive changes, as cloud-init then
/// makes new ones), never the caller's.
pub fn argv(r: &Route, spec: &ExecSpec) -> Vec<String> {
    let mut a: Vec<String> = vec!["-i".into(), r.key.clone()];
    for o in [
        "IdentitiesOnly=yes".to_string(),
        "BatchMode=yes".into(),
        "StrictHostKeyChecking=accept-new".into(),
        format!("UserKnownHostsFile={}", r.known_hosts),
        "LogLevel=ERROR".into(),
        "ConnectTimeout=10".into(),
    ] {
        a.push("-o".into());
        a.push(o);
    }
    // With a terminal, ssh sends its own TERM (set to spec.term by the caller).
    a.push(if spec.tty { "-tt".into() } else { "-T".into() });
    a.push("-l".into());
    a.push(r.user.clone());
    a.push(r.ip.clone());
    a.push("--".into());
    a.push(remote_command(spec));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> ExecSpec {
        ExecSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn words_reach_the_guest_as_given() {
        assert_eq!(quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(
            quote("$(rm -rf /); `x` \"y\"\n*"),
            "'$(rm -rf /); `x` \"y\"\n*'"
        );
        // What sh makes of the quoted words is the words themselves.
        let words = ["a b", "it's", "$HOME", "*", "x\ny", "", "--", ";|&"];
        let line = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("for w in {line}; do printf '[%s]' \"$w\"; done"),
            ])
            .output()
            .unwrap();
        let want: String = words.iter().map(|w| format!("[{w}]")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }

    #[test]
    fn remote_commands() {
        assert_eq!(remote_command(&spec(&["uname", "-a"])), "exec uname -a");
        let mut s = spec(&["sh", "-c", "echo $X"]);
        s.env = vec![("X".into(), "a b".into())];
        s.cwd = Some("/var/tmp".into());
        s.user = Some("www-data".into());
        assert_eq!(
            remote_command(&s),
            "cd /var/tmp && exec sudo -n -u www-data -- env 'X=a b' sh -c 'echo $X'"
        );
        assert_eq!(
            remote_command(&spec(&[])),
            "exec env \"${SHELL:-/bin/sh}\" -l"
        );
        let mut s = spec(&[]);
        s.user = Some("ops".into());
        assert_eq!(remote_command(&s), "exec sudo -n -u ops -i");
    }

    #[test]
    fn ssh_arguments() {
        let r = Route {
            user: "debian".into(),
            ip: "10.0.0.5".into(),
            key: "/s/seeds/web/ssh_key".into(),
            known_hosts: "/s/seeds/web/known_hosts".into(),
        };
        let mut s = spec(&["true"]);
        s.tty = true;
        s.term = Some("xterm".into());
        let a = argv(&r, &s);
        assert_eq!(&a[..2], ["-i", "/s/seeds/web/ssh_key"]);
        assert!(a.contains(&"UserKnownHostsFile=/s/seeds/web/known_hosts".to_string()));
        assert!(a.contains(&"-tt".to_string()));
        assert_eq!(
            &a[a.len() - 5..],
            ["-l", "debian", "10.0.0.5", "--", "exec true"]
        );
    }
}
