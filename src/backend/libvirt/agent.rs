//! `creature exec` on a VM through the QEMU guest agent: `guest-exec` with
//! its output captured, then `guest-exec-status` until the command exits.
//! The agent has no terminal and returns output when the command ends.
//! Messages are built with serde_json and the command goes to the guest as
//! an argument vector, through the guest's /bin/sh only as `exec "$@"`
//! (so PATH is searched in the environment given, and no argument is ever
//! pasted into a script).

use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use virt::domain::Domain;

use crate::backend::libvirt::domain_xml::GUEST_AGENT_CHANNEL;
use crate::backend::libvirt::map_error;
use crate::error::{Error, Kind, Result};
use crate::exec::ExecRequest;
use crate::interrupt;

/// Seconds one agent command may take before libvirt gives up: generous,
/// since an emulated (TCG) guest on a busy host answers slowly.
const AGENT_TIMEOUT_S: i32 = 30;
/// More input than this is refused: the agent holds it in memory.
pub const MAX_INPUT: usize = 16 << 20;

/// Whether the domain XML has the agent's virtio channel.
pub fn has_channel(domain_xml: &str) -> bool {
    crate::xml::attrs_of(domain_xml, "target").iter().any(|t| {
        t.get("type").map(String::as_str) == Some("virtio")
            && t.get("name").map(String::as_str) == Some(GUEST_AGENT_CHANNEL)
    })
}

/// The `guest-exec` request for `req` (pure).
pub fn exec_request(req: &ExecRequest, input: Option<&[u8]>) -> Value {
    // `exec "$@"` searches PATH in the environment given; a working
    // directory is entered first, passed as an argument, not pasted.
    let (script, mut args) = match &req.cwd {
        Some(dir) => (
            "cd -- \"$1\" && shift && exec \"$@\"",
            vec!["sh".to_string(), dir.clone()],
        ),
        None => ("exec \"$@\"", vec!["sh".to_string()]),
    };
    args.extend(req.argv.iter().cloned());
    let mut arg = vec!["-c".to_string(), script.to_string()];
    arg.extend(args);
    let mut a = json!({
        "path": "/bin/sh",
        "arg": arg,
        "env": req.env,
        "capture-output": true,
    });
    if let Some(data) = input {
        a["input-data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    json!({ "execute": "guest-exec", "arguments": a })
}

/// What one `guest-exec-status` reply says.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    pub exited: bool,
    /// A shell's exit status: 128+N for signal N.
    pub code: Option<i32>,
    pub out: Vec<u8>,
    pub err: Vec<u8>,
}

pub fn parse_status(reply: &str) -> Result<Status> {
    let v: Value = serde_json::from_str(reply)
        .map_err(|e| Error::other("the guest agent's answer is not JSON").caused_by(e))?;
    let r = &v["return"];
    let data = |k: &str| -> Result<Vec<u8>> {
        match r[k].as_str() {
            None => Ok(Vec::new()),
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| {
                    Error::other(format!("the guest agent's {k} is not base64")).caused_by(e)
                }),
        }
    };
    let code = match (r["exitcode"].as_i64(), r["signal"].as_i64()) {
        (_, Some(sig)) => Some(128 + sig as i32),
        (Some(c), None) => Some(c as i32),
        (None, None) => None,
    };
    Ok(Status {
        exited: r["exited"].as_bool().unwrap_or(false),
        code,
        out: data("out-data")?,
        err: data("err-data")?,
    })
}

fn command(dom: &Domain, name: &str, msg: &Value) -> Result<String> {
    let what = msg["execute"].as_str().unwrap_or("command").to_string();
    crate::trace::call(
        || format!("qemu-ga: {what} on {name}"),
        || {
            dom.qemu_agent_command(&msg.to_string(), AGENT_TIMEOUT_S, 0)
                .map_err(|e| {
                    let mut err = map_error(
                        format!("the guest agent of machine {name:?} did not answer {what} (is qemu-ga running in the guest?)"),
                        e,
                    );
                    if err.kind() == Kind::Other {
                        err = Error::new(Kind::Unavailable, err.message().to_string())
                            .caused_by(err.causes().join("; "));
                    }
                    err
                })
        },
    )
}

/// Run `req` in the running domain; its exit status.
pub fn exec(dom: &Domain, name: &str, req: &ExecRequest, input: Option<&[u8]>) -> Result<i32> {
    // libvirt connects to the agent when the guest opens its port, a moment
    // after qemu-ga starts: a machine that has just booted gets that moment.
    let msg = exec_request(req, input);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let started = loop {
        match command(dom, name, &msg) {
            Err(e)
                if e.causes().iter().any(|c| c.contains("not connected"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(250))
            }
            other => break other?,
        }
    };
    let pid = serde_json::from_str::<Value>(&started)
        .ok()
        .and_then(|v| v["return"]["pid"].as_i64())
        .ok_or_else(|| {
            Error::other(format!(
                "the guest agent did not start the command: {started}"
            ))
        })?;
    interrupt::catch();
    let status_msg = json!({ "execute": "guest-exec-status", "arguments": { "pid": pid } });
    let mut pause = Duration::from_millis(50);
    loop {
        let st = parse_status(&command(dom, name, &status_msg)?)?;
        if st.exited {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&st.out).and_then(|_| out.flush());
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&st.err).and_then(|_| err.flush());
            return Ok(st.code.unwrap_or(1));
        }
        if interrupt::requested() {
            return Err(interrupt::error(&format!(
                "stopped waiting; the command still runs in {name} as pid {pid}"
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(argv: &[&str], cwd: Option<&str>) -> ExecRequest {
        ExecRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            user: None,
            cwd: cwd.map(Into::into),
            tty: false,
        }
    }

    #[test]
    fn arguments_travel_as_a_vector_never_in_the_script() {
        let evil = "$(reboot); `x` \"q\" 'y'";
        let v = exec_request(&req(&["echo", evil], Some("/tmp/a b")), Some(b"in"));
        let a = &v["arguments"];
        assert_eq!(v["execute"], "guest-exec");
        assert_eq!(a["path"], "/bin/sh");
        assert_eq!(
            a["arg"],
            json!([
                "-c",
                "cd -- \"$1\" && shift && exec \"$@\"",
                "sh",
                "/tmp/a b",
                "echo",
                evil
            ])
        );
        assert_eq!(a["env"], json!(["PATH=/bin"]));
        assert_eq!(a["input-data"], "aW4=");
        assert_eq!(a["capture-output"], true);
        let plain = exec_request(&req(&["ls"], None), None);
        assert_eq!(
            plain["arguments"]["arg"],
            json!(["-c", "exec \"$@\"", "sh", "ls"])
        );
        assert!(plain["arguments"].get("input-data").is_none());
    }

    #[test]
    fn statuses_with_output_codes_and_signals() {
        let s = parse_status(
            r#"{"return":{"exited":true,"exitcode":7,"out-data":"aGkK","err-data":"b29wcwo="}}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            Status {
                exited: true,
                code: Some(7),
                out: b"hi\n".to_vec(),
                err: b"oops\n".to_vec()
            }
        );
        let s = parse_status(r#"{"return":{"exited":true,"signal":9}}"#).unwrap();
        assert_eq!(s.code, Some(137));
        assert!(
            !parse_status(r#"{"return":{"exited":false}}"#)
                .unwrap()
                .exited
        );
        assert!(parse_status("nonsense").is_err());
    }

    #[test]
    fn the_agent_channel_is_found_in_domain_xml() {
        let with = r#"<domain><devices><channel type="unix"><source mode="bind"/><target type="virtio" name="org.qemu.guest_agent.0"/></channel></devices></domain>"#;
        let other = r#"<domain><devices><channel type="unix"><target type="virtio" name="com.example.x"/></channel><target name="org.qemu.guest_agent.0"/></devices></domain>"#;
        assert!(has_channel(with));
        assert!(!has_channel(other));
        assert!(!has_channel("<domain/>"));
    }
}
