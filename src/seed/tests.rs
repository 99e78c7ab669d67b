use super::*;

fn seed() -> Seed {
    Seed {
        format: Format::Nocloud,
        hostname: "web".into(),
        default_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@host".into()],
        users: vec![User {
            name: "deploy".into(),
            keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy deploy@ci".into()],
            sudo: true,
        }],
        packages: vec!["nginx".into()],
        runcmd: vec![vec!["touch".into(), "/run/it \"quoted\"".into()]],
        locale: Some("C.UTF-8".into()),
        default_user: Some("debian".into()),
        creature_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICreature creature@web".into()),
        files: vec![
            File {
                path: "/etc/motd".into(),
                content: b"welcome: {not yaml} # \"x\"\n".to_vec(),
                mode: 0o644,
                owner: None,
            },
            File {
                path: "/home/deploy/.env".into(),
                content: b"TOKEN=s3cret\n".to_vec(),
                mode: 0o600,
                owner: Some("deploy:deploy".into()),
            },
        ],
        user_data: None,
    }
}

fn nics() -> Vec<NicConfig> {
    vec![
        NicConfig {
            mac: "52:54:00:0a:0b:0c".into(),
            addr: Addr::Static {
                ip: "10.23.5.140".parse().unwrap(),
                prefix: 24,
                gateway: Some("10.23.5.1".parse().unwrap()),
                dns: vec!["10.23.5.1".parse().unwrap()],
            },
        },
        NicConfig {
            mac: "52:54:00:0a:0b:0d".into(),
            addr: Addr::Dhcp,
        },
    ]
}

fn golden(dir: &str, r: &Rendered) {
    for (name, bytes) in &r.files {
        let text = String::from_utf8(bytes.clone()).unwrap();
        crate::golden::check(&format!("seed/{dir}/{}", name.replace('/', "_")), &text);
    }
}

#[test]
fn nocloud_seed_is_golden() {
    let r = render("web", &seed(), Some(&nics()));
    assert_eq!(r.label, "cidata");
    let names: Vec<&str> = r.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["meta-data", "user-data", "network-config"]);
    golden("nocloud", &r);
}

#[test]
fn openstack_drive_is_golden() {
    let s = Seed {
        format: Format::Openstack,
        ..seed()
    };
    let r = render("web", &s, Some(&nics()));
    assert_eq!(r.label, "config-2");
    let names: Vec<&str> = r.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "openstack/latest/meta_data.json",
            "openstack/latest/user_data",
            "openstack/latest/network_data.json"
        ]
    );
    golden("openstack", &r);
}

#[test]
fn documents_read_back_as_what_was_meant() {
    // cloud-init parses YAML; these are JSON, which YAML contains: read
    // them back as JSON to check escaping and structure.
    let r = render("web", &seed(), Some(&nics()));
    let ud = String::from_utf8(r.files[1].1.clone()).unwrap();
    let body = ud
        .strip_prefix("#cloud-config\n")
        .expect("a cloud-config header");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["users"][0], "default");
    assert_eq!(v["users"][1]["name"], "deploy");
    assert_eq!(v["runcmd"][0][1], "/run/it \"quoted\"");
    use base64::Engine;
    let motd = base64::engine::general_purpose::STANDARD
        .decode(v["write_files"][0]["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(motd, b"welcome: {not yaml} # \"x\"\n");
    assert_eq!(v["write_files"][0]["permissions"], "0644");
    assert!(v["write_files"][0].get("defer").is_none());
    // Owned by a user the seed makes: written after the user exists.
    assert_eq!(v["write_files"][1]["defer"], true);
    let net: serde_json::Value = serde_json::from_slice(&r.files[2].1).unwrap();
    assert_eq!(net["ethernets"]["eth0"]["addresses"][0], "10.23.5.140/24");
    assert_eq!(net["ethernets"]["eth1"]["dhcp4"], true);
}

#[test]
fn instance_id_changes_with_what_the_machine_is_told() {
    let a = render("web", &seed(), Some(&nics()));
    assert_eq!(
        a.instance_id,
        render("web", &seed(), Some(&nics())).instance_id
    );
    let mut other = nics();
    other[0].addr = Addr::Dhcp;
    assert_ne!(
        a.instance_id,
        render("web", &seed(), Some(&other)).instance_id
    );
    assert_ne!(a.instance_id, render("web", &seed(), None).instance_id);
    assert!(a.instance_id.starts_with("web-"));
}

#[test]
fn a_user_data_file_is_used_whole() {
    let s = Seed {
        user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
        ..Seed::default()
    };
    assert_eq!(user_data(&s), b"#!/bin/sh\necho hi\n");
    // Nothing to say still says something: cloud-init wants the file.
    assert_eq!(user_data(&Seed::default()), b"#cloud-config\n{}\n");
}

#[test]
fn inject_arguments() {
    let a: InjectArg = "/tmp/a:/etc/a:0640".parse().unwrap();
    assert_eq!(
        (a.source.as_str(), a.dest.as_str(), a.mode),
        ("/tmp/a", "/etc/a", Some(0o640))
    );
    assert_eq!("/tmp/a:/etc/a".parse::<InjectArg>().unwrap().mode, None);
    for bad in [
        "/tmp/a",
        "/tmp/a:etc/a",
        "/tmp/a:/etc/../a",
        "/tmp/a:/etc/a:999",
        ":/etc/a",
        "/a:/b:0644:x",
        "/tmp/a:/etc/",
    ] {
        assert!(bad.parse::<InjectArg>().is_err(), "{bad} accepted");
    }
    assert!(check_owner("www-data:www-data").is_ok());
    assert!(check_owner("root:").is_err());
    assert!(check_owner("a b").is_err());
    assert_eq!(
        keys_of("# c\n\nssh-rsa AAAA x\n").unwrap(),
        ["ssh-rsa AAAA x"]
    );
    assert!(keys_of("# only\n").is_err());
    assert!(keys_of("nonsense\n").is_err());
}
