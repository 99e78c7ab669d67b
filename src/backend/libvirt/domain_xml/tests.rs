use super::*;

fn spec(backend: Backend) -> DomainSpec {
    let (bus, dev) = disk_target(backend, 0);
    DomainSpec {
        name: "web-1".into(),
        backend,
        cpus: 2,
        memory_bytes: 256 << 20,
        max_cpus: 4,
        max_memory_bytes: 512 << 20,
        disks: vec![
            DiskSpec {
                // A xen disk is a raw copy (blkback), others qcow2 overlays.
                path: if backend == Backend::Xen {
                    "/var/lib/creature/disks/web-1-disk0.raw".into()
                } else {
                    "/var/lib/creature/disks/web-1-disk0.qcow2".into()
                },
                format: if backend == Backend::Xen {
                    "raw"
                } else {
                    "qcow2"
                }
                .into(),
                bus,
                dev,
                iotune: crate::iotune::Limits {
                    read_bytes_sec: Some(10 << 20),
                    total_iops_sec: Some(200),
                    ..Default::default()
                },
                readonly: false,
                cdrom: false,
            },
            {
                // The config drive.
                let (bus, dev) = disk_target(backend, 1);
                DiskSpec {
                    path: "/var/lib/creature/seeds/web-1/drive.iso".into(),
                    format: "raw".into(),
                    bus,
                    dev,
                    iotune: Default::default(),
                    readonly: true,
                    cdrom: false,
                }
            },
        ],
        kernel: Some("/var/lib/creature/images/sha256/aa".into()),
        initrd: Some("/var/lib/creature/images/sha256/bb".into()),
        cmdline: Some("console=ttyS0 quiet msg=\"<&>\"".into()),
        firmware: Firmware::Bios,
        nics: vec![NicSpec {
            network: "lan".into(),
            mac: "52:54:00:12:34:56".into(),
            model: if backend == Backend::Xen {
                "netfront"
            } else {
                "virtio"
            },
            filter: (backend != Backend::Xen).then(|| NicFilter {
                name: "creature.nic.web-1.0".into(),
                ip: Some("10.23.5.130".into()),
            }),
            ifname: (backend == Backend::Xen).then(|| "crv01234567800".into()),
        }],
        serial_log: "/var/lib/creature/logs/web-1.serial.log".into(),
        guest_agent: backend != Backend::Xen,
        display: Some(GraphicsSpec {
            kind: if backend == Backend::Xen {
                "vnc"
            } else {
                "spice"
            },
            listen: "127.0.0.1".into(),
            password: "pw<&\"8ch".into(),
        }),
        meta: Meta {
            template: "tiny".into(),
            created: "2026-11-22T00:00:00Z".into(),
            state_dir: "/var/lib/creature".into(),
            volumes: vec!["web-1-disk0.qcow2".into()],
            pool: "creature".into(),
        },
    }
}

#[test]
fn golden_per_backend() {
    for b in [Backend::Kvm, Backend::Qemu, Backend::Xen] {
        crate::golden::check(&format!("domain/{b}.xml"), &render(&spec(b)));
    }
}

/// An installer: an empty disk, the ISO as a cdrom booted after it, a
/// screen.
#[test]
fn golden_installer() {
    let mut s = spec(Backend::Qemu);
    s.kernel = None;
    s.initrd = None;
    s.cmdline = None;
    s.disks[0].iotune = Default::default();
    s.disks.truncate(1);
    s.disks.push(DiskSpec {
        path: "/srv/iso/debian-12.iso".into(),
        format: "raw".into(),
        bus: "sata",
        dev: "sda".into(),
        iotune: Default::default(),
        readonly: true,
        cdrom: true,
    });
    let x = render(&s);
    crate::golden::check("domain/qemu-installer.xml", &x);
    let hd = x.find("<boot dev=\"hd\"/>").unwrap();
    let cd = x.find("<boot dev=\"cdrom\"/>").unwrap();
    assert!(hd < cd, "the disk boots first: {x}");
    // Without a cdrom, the disk alone.
    s.disks.truncate(1);
    assert!(!render(&s).contains("cdrom"));
}

#[test]
fn sizing_is_read_back_from_rendered_xml() {
    let s = spec(Backend::Qemu);
    let got = sizing(&render(&s)).unwrap();
    assert_eq!(
        got,
        crate::resize::Sizing {
            cpus: 2,
            max_cpus: 4,
            memory: 256 << 20,
            max_memory: 512 << 20,
            balloon: true
        }
    );
    let libvirt = "<domain><memory unit='KiB'>262144</memory><currentMemory unit='KiB'>262144</currentMemory>\
                   <vcpu placement='static'>1</vcpu><devices><memballoon model='none'/></devices></domain>";
    let got = sizing(libvirt).unwrap();
    assert_eq!(
        (got.cpus, got.max_cpus, got.memory, got.balloon),
        (1, 1, 256 << 20, false)
    );
    // A running domain's balloon has children (its alias).
    let xen = "<domain type='xen'><memory unit='KiB'>524288</memory><currentMemory unit='KiB'>262144</currentMemory>\
               <vcpu placement='static'>1</vcpu><devices/></domain>";
    assert!(
        sizing(xen).unwrap().balloon,
        "a xen domain always has Xen's balloon"
    );
    let live = "<domain><memory unit='KiB'>524288</memory><currentMemory unit='KiB'>262144</currentMemory>\
                <vcpu placement='static' current='1'>2</vcpu><devices><memballoon model='virtio'>\
                <alias name='balloon0'/></memballoon></devices></domain>";
    let got = sizing(live).unwrap();
    assert_eq!(
        (got.cpus, got.max_cpus, got.memory, got.balloon),
        (1, 2, 256 << 20, true)
    );
}

#[test]
fn metadata_round_trips() {
    let s = spec(Backend::Qemu);
    let m = parse_metadata(&metadata(&s.meta).render()).unwrap();
    assert_eq!(m.template, "tiny");
    assert_eq!(m.state_dir, "/var/lib/creature");
    assert_eq!(m.volumes, ["web-1-disk0.qcow2"]);
    assert_eq!(
        parse_metadata("<other><owner>someone</owner></other>"),
        None
    );
}

#[test]
fn disk_targets() {
    assert_eq!(disk_target(Backend::Qemu, 1), ("virtio", "vdb".into()));
    assert_eq!(disk_target(Backend::Xen, 0), ("xen", "xvda".into()));
}
