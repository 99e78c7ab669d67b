//! Property tests over everything that reads user input or writes a
//! format: the template parser and merger, names, sizes, wait specs, MACs,
//! subnets, and the domain XML and LXC config renderers. Each input either
//! is refused with an error or gives output that parses back and carries no
//! injected element or line. `scripts/fuzz` runs them with many more cases;
//! failing inputs proptest finds are kept in tests/integration/fuzz.proptest-regressions
//! and replayed first on every run.

use proptest::prelude::*;

use creature::backend::libvirt::domain_xml::{self, DiskSpec, DomainSpec, Meta, NicSpec};
use creature::backend::lxc::config::{self, Cgroups, ContainerSpec, Init, RootfsPath, Veth};
use creature::backend::Backend;
use creature::net::ipv4::Subnet;
use creature::net::Mac;
use creature::size::Size;
use creature::template::load::{self, Source};
use creature::template::merge;
use creature::template::schema::Firmware;
use creature::wait::Wait;

/// Text a hostile user might type: any characters, weighted toward the
/// ones formats care about.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[<>&'\"\\n\\r\\t =:;#\\[\\]{}$\\\\/.a-z0-9-]{0,40}",
        any::<String>(),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

fn domain(name: String, text: String) -> DomainSpec {
    DomainSpec {
        name,
        backend: Backend::Qemu,
        cpus: 1,
        memory_bytes: 256 << 20,
        max_cpus: 1,
        max_memory_bytes: 256 << 20,
        disks: vec![DiskSpec {
            path: format!("/d/{text}"),
            format: "qcow2".into(),
            bus: "virtio",
            dev: "vda".into(),
            iotune: Default::default(),
            readonly: false,
            cdrom: false,
        }],
        display: None,
        kernel: Some(text.clone()),
        initrd: None,
        cmdline: Some(text.clone()),
        firmware: Firmware::Bios,
        nics: vec![NicSpec {
            network: text.clone(),
            mac: "52:54:00:12:34:56".into(),
            model: "virtio",
            filter: Some(creature::backend::libvirt::domain_xml::NicFilter {
                name: text.clone(),
                ip: Some(text.clone()),
            }),
            ifname: Some(text.clone()),
        }],
        serial_log: text.clone(),
        guest_agent: true,
        meta: Meta {
            template: text.clone(),
            created: text.clone(),
            state_dir: text.clone(),
            volumes: vec![text.clone()],
            pool: text,
        },
    }
}

/// Element names, in document order, or an error if it does not parse.
fn elements(xml: &str) -> Result<Vec<String>, String> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e)) => {
                out.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(quick_xml::events::Event::Eof) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn container(name: String, text: String) -> ContainerSpec {
    ContainerSpec {
        name,
        rootfs: RootfsPath::Dir(text.clone()),
        memory_bytes: 64 << 20,
        cpus: 1,
        cgroups: Cgroups::V2,
        apparmor: false,
        init: Init::Busybox,
        nics: vec![Veth {
            bridge: text.clone(),
            mac: "00:16:3e:12:34:56".into(),
            name: "eth0".into(),
            pair: "crv0123456789a0".into(),
        }],
        idmap: None,
        log_file: text.clone(),
        console_log: text,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn names_never_panic_and_valid_ones_are_safe(s in hostile()) {
        if creature::names::is_valid(&s) {
            prop_assert!(!s.contains('/') && !s.contains("..") && !s.is_empty());
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn sizes_parse_or_refuse_and_round_trip(s in hostile(), n in any::<u64>()) {
        let _ = s.parse::<Size>();
        let shown = Size(n).to_string();
        prop_assert_eq!(shown.parse::<Size>().map(|x| x.0).ok(), Some(n), "{}", shown);
    }

    #[test]
    fn waits_parse_or_refuse_and_round_trip(s in hostile(), port in 1u16..) {
        if let Ok(w) = s.parse::<Wait>() {
            prop_assert_eq!(w.to_string().parse::<Wait>().ok(), Some(w));
        }
        let t = format!("tcp:{port}");
        prop_assert_eq!(t.parse::<Wait>().unwrap().to_string(), t);
    }

    #[test]
    fn macs_accepted_are_unicast_and_round_trip(s in hostile(), b in any::<[u8; 6]>()) {
        for text in [s, Mac(b).to_string()] {
            if let Ok(m) = text.parse::<Mac>() {
                prop_assert!(m.0[0] & 1 == 0 && m.0[0] != 0xfe && m.0 != [0; 6]);
                prop_assert_eq!(m.to_string().parse::<Mac>().ok(), Some(m));
            }
        }
    }

    #[test]
    fn subnets_parse_or_refuse_and_round_trip(s in hostile(), a in any::<u32>(), p in 0u8..=32) {
        let _ = s.parse::<Subnet>();
        let sub = Subnet::new(std::net::Ipv4Addr::from(a), p);
        if let Ok(back) = sub.to_string().parse::<Subnet>() {
            prop_assert_eq!(back, sub);
        }
    }

    #[test]
    fn template_text_parses_or_is_refused(text in hostile(), key in hostile()) {
        let src = Source { name: "fuzz".into(), origin: "fuzz.toml".into(), text: text.clone() };
        let _ = load::parse(&src);
        let src = Source {
            name: "fuzz".into(),
            origin: "fuzz.toml".into(),
            text: format!("backend = \"qemu\"\ndescription = {:?}\n[variables]\nx = {:?}\n", text, key),
        };
        let _ = load::parse(&src);
    }

    #[test]
    fn set_and_variables_never_panic(assignment in hostile(), value in hostile()) {
        let mut t = toml::Table::new();
        let _ = merge::apply_set(&mut t, &assignment);
        let _ = merge::apply_set(&mut t, &format!("description={value}"));
        let _ = merge::apply_set(&mut t, &format!("disk.0.size={value}"));
        let mut vars = toml::Table::new();
        vars.insert("v".into(), toml::Value::String(value.clone()));
        t.insert("variables".into(), toml::Value::Table(vars));
        t.insert("description".into(), toml::Value::String(format!("${{v}} {assignment} ${{v:-d}}")));
        let _ = merge::substitute(&mut t);
    }

    /// Whatever the strings, the domain XML parses and has exactly the
    /// elements it has with harmless strings: nothing is injected.
    #[test]
    fn domain_xml_escapes_everything(text in hostile()) {
        let baseline = elements(&domain_xml::render(&domain("m".into(), "x".into()))).unwrap();
        let got = elements(&domain_xml::render(&domain("m".into(), text.clone())));
        prop_assert_eq!(got, Ok(baseline), "{:?}", text);
    }

    /// The LXC config refuses a value it cannot write on one line, and
    /// otherwise has exactly the lines it has with harmless strings.
    #[test]
    fn lxc_config_has_no_injected_line(text in hostile()) {
        let baseline = config::render(&container("c".into(), "/x".into())).unwrap();
        if let Ok(got) = config::render(&container("c".into(), text.clone())) {
            prop_assert_eq!(got.lines().count(), baseline.lines().count(), "{:?}", text);
            let keys = |s: &str| s.lines().map(|l| l.split(" = ").next().unwrap_or("").to_string()).collect::<Vec<_>>();
            prop_assert_eq!(keys(&got), keys(&baseline));
        }
    }
}
