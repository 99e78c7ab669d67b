//! The EXAMPLES and SEE ALSO of every man page. Each example is a command
//! line a test parses against the real CLI, so none can go stale.

/// Examples of the verb at `path` (words after `creature`): (command, what it does).
pub fn of(path: &str) -> &'static [(&'static str, &'static str)] {
    match path {
        "" => &[
            (
                "creature launch web -t tiny --network lan --wait lease",
                "Create a QEMU machine from a template, start it and wait for its DHCP lease.",
            ),
            ("creature list --state running", "The running machines."),
            (
                "creature exec box1 -- uname -a",
                "Run a command in a machine.",
            ),
            (
                "creature stop --all --backend lxc",
                "Stop every running container.",
            ),
            (
                "creature matrix --backend lxc",
                "What creature allows for containers.",
            ),
        ],
        "create" => &[
            (
                "creature create web -t tiny",
                "A machine from the shipped tiny template, not started.",
            ),
            (
                "creature create web -t debian-12 --ssh-key ~/.ssh/id_ed25519.pub --inject-file motd:/etc/motd:0644",
                "A Debian VM whose cloud-init installs the key and the file at first boot.",
            ),
            (
                "creature create desk -t tiny --set display.type=spice",
                "A machine with a SPICE display on 127.0.0.1 and a password of its own (`creature display desk`).",
            ),
            (
                "creature create box1 -t lxc-busybox --network lan --ip 10.0.0.10",
                "A container with a fixed address on network lan.",
            ),
            (
                "creature create big -t tiny --cpus 2 --memory 1GiB --set nic.0.network=lan",
                "Override template keys on the command line.",
            ),
        ],
        "launch" => &[
            (
                "creature launch web -t tiny --wait lease",
                "Create, start, and wait until the machine holds its DHCP lease.",
            ),
            (
                "creature launch db -t lxc-debian --wait tcp:22 --wait-timeout 60",
                "Wait until port 22 of its reserved address answers.",
            ),
        ],
        "start" => &[
            ("creature start web", "Start one machine."),
            ("creature start web db box1", "Start several, in parallel."),
            (
                "creature start --all --backend lxc",
                "Start every container that is not running.",
            ),
            (
                "creature start web --wait lease",
                "Wait for the machine's DHCP lease.",
            ),
        ],
        "stop" => &[
            (
                "creature stop web",
                "Ask the guest to shut down; give up after 60 s.",
            ),
            (
                "creature stop web --timeout 30 --force",
                "Power it off if it has not shut down after 30 s.",
            ),
            (
                "creature stop --all --template tiny",
                "Stop every running machine made from template tiny.",
            ),
        ],
        "destroy" => &[
            (
                "creature destroy web",
                "Power a machine off at once, as virsh destroy.",
            ),
            (
                "creature destroy --backend qemu --yes",
                "Power off every running qemu machine, without asking.",
            ),
        ],
        "reboot" => &[
            ("creature reboot web", "Reboot a machine."),
            ("creature restart --all", "Reboot every running machine."),
        ],
        "pause" => &[
            (
                "creature pause web",
                "Stop a machine's CPUs (a container: freeze it).",
            ),
            ("creature pause --all", "Pause every running machine."),
        ],
        "unpause" => &[
            ("creature unpause web", "Resume its CPUs."),
            ("creature unpause --all", "Resume every paused machine."),
        ],
        "suspend" => &[(
            "creature suspend web",
            "Save a running VM's memory to disk and stop it.",
        )],
        "restore" => &[
            ("creature restore web", "Bring back a suspended VM."),
            (
                "creature restore --all",
                "Bring back every suspended machine.",
            ),
        ],
        "delete" => &[
            (
                "creature delete web",
                "Delete a machine, its disks and its reservations (asks first).",
            ),
            (
                "creature delete web --force --yes",
                "Power it off first, and do not ask (scripts).",
            ),
            (
                "creature rm --state shut-off --backend lxc --yes",
                "Delete every stopped container.",
            ),
        ],
        "list" => &[
            (
                "creature list",
                "Every machine, reconciled with creature's records.",
            ),
            (
                "creature ls --state running --backend lxc",
                "Running containers only.",
            ),
            (
                "creature list --network lan --format json",
                "Machines on network lan, as JSON (docs/json.md).",
            ),
        ],
        "info" => &[
            ("creature info web", "One machine in detail."),
            ("creature info web --format json", "The same, as JSON."),
        ],
        "log" => &[
            (
                "creature log web -n 50",
                "The last 50 lines of the serial console.",
            ),
            (
                "creature log web --since start -f",
                "What this run logged, then follow it.",
            ),
            (
                "creature log xen1 --since 2026-12-04T09:30",
                "A xen machine's console from 09:30 local time (its lines carry timestamps).",
            ),
        ],
        "console" => &[(
            "creature console web",
            "The interactive serial console; Ctrl-] leaves.",
        )],
        "exec" => &[
            (
                "creature exec box1 -- ip -4 addr",
                "Run a command in a container; its exit status is creature's.",
            ),
            (
                "creature exec box1 -u 1000 --cwd /tmp -e LANG=C -- id",
                "As a user, in a directory, with a variable.",
            ),
            (
                "creature exec web -- cat /etc/os-release",
                "In a VM, through the QEMU guest agent.",
            ),
        ],
        "shell" => &[(
            "creature shell box1",
            "A login shell in a container, on your terminal.",
        )],
        "display" => &[
            (
                "creature display web",
                "Where its VNC or SPICE display listens (vnc://127.0.0.1:5900).",
            ),
            (
                "creature display web --show-password --format json",
                "The same with its password, for a script that starts a viewer.",
            ),
            (
                "creature display web --screenshot web.png",
                "Save the guest's screen as PNG.",
            ),
            (
                "creature display web --set-password",
                "A new password, live: the old one stops working at once.",
            ),
        ],
        "snapshot" | "snapshot create" => &[
            (
                "creature snapshot create web before-upgrade",
                "Freeze its disks as they are now, live; it writes to new overlays.",
            ),
            (
                "creature snapshot create web warm --memory",
                "Its memory too: a revert resumes it where it was.",
            ),
        ],
        "snapshot list" => &[
            ("creature snapshot list web", "Its snapshots as a tree, with sizes and dates."),
            ("creature snapshot list web --format json", "The same for scripts (docs/json.md)."),
        ],
        "snapshot revert" => &[(
            "creature snapshot revert web before-upgrade --yes",
            "Back to that snapshot; what it wrote since its last snapshot is lost.",
        )],
        "snapshot delete" => &[(
            "creature snapshot delete web before-upgrade",
            "Forget the snapshot; its data is merged into what depends on it.",
        )],
        "snapshot export" => &[(
            "creature snapshot export web --image web-golden",
            "A new image in the cache from its disk, for templates to use.",
        )],
        "resize" => &[
            (
                "creature resize web --cpus 2 --memory 2GiB",
                "More vCPUs and memory: live up to its max_cpus and max_memory, and persistent.",
            ),
            (
                "creature resize web --disk 40GiB --disk vdb=100GiB",
                "Grow two disks (disks only grow).",
            ),
        ],
        "rescue" => &[
            ("creature rescue web", "Boot it from the rescue image (template key rescue, else the image named rescue); its disks follow a scratch disk."),
            ("creature rescue web --image tiny-guest", "From another image with vmlinuz and initrd.img."),
        ],
        "unrescue" => &[("creature unrescue web", "Boot it from its own disks again.")],
        "migrate" => &[("creature migrate web --to b", "Live-migrate it to host b.")],
        "evacuate" => &[(
            "creature evacuate a --to b",
            "Rebuild host a's machines on host b.",
        )],
        "set-password" => &[(
            "creature set-password web --user root",
            "Refused on every backend (Nova marks it missing).",
        )],
        "config-drive" => &[
            (
                "creature config-drive web",
                "What its config drive says (never its contents).",
            ),
            (
                "creature config-drive web --ssh-key new.pub",
                "Rotate the default user's keys: cloud-init installs them at the next start.",
            ),
            (
                "creature config-drive web --hostname web2 --format json",
                "Rename the guest at its next start.",
            ),
        ],
        "limits" => &[
            ("creature limits web", "Its disks' limits."),
            (
                "creature limits web --total-bps 10MiB --total-iops 500",
                "Limit every disk, live and persistent.",
            ),
            (
                "creature limits web --disk vdb --read-bps 0",
                "Lift one limit of one disk.",
            ),
        ],
        "volume" | "volume create" => &[
            (
                "creature volume create data --size 10GiB",
                "A 10 GiB qcow2 volume in creature's own pool.",
            ),
            (
                "creature volume create shared --size 1GiB --disk-format raw --pool default",
                "A raw volume in the libvirt pool named default.",
            ),
            (
                "creature volume create san1 --iscsi 10.0.0.5 --iqn iqn.2026-12.org.example:disks --lun 1 --chap-user web --chap-secret-file /root/chap",
                "Register LUN 1 of an iSCSI target, logging in with CHAP (the secret stays in libvirt).",
            ),
        ],
        "volume list" => &[
            ("creature volume list", "Every volume, its size and where it is attached."),
            ("creature volume list --format json", "The same for scripts (docs/json.md)."),
        ],
        "volume info" => &[("creature volume info data", "One volume: its pool, file, size and holder.")],
        "volume delete" => &[("creature volume delete data --yes", "Delete a volume no machine uses, and its data.")],
        "volume attach" => &[
            (
                "creature volume attach web data",
                "Hot-plug it into the running machine, and keep it in its definition.",
            ),
            (
                "creature volume attach db data --readonly --target vdc",
                "Read-only, at a chosen device name.",
            ),
        ],
        "volume detach" => &[(
            "creature volume detach web data",
            "Unplug it from the running guest, then from the definition.",
        )],
        "volume swap" => &[(
            "creature volume swap web data data2",
            "Replace one volume with another.",
        )],
        "secgroup" | "secgroup create" => &[
            (
                "creature secgroup create web --description web-servers",
                "A group; it allows all outbound traffic and no inbound yet.",
            ),
            (
                "creature secgroup create ssh",
                "Another, for machines that take ssh.",
            ),
        ],
        "secgroup list" => &[
            ("creature secgroup list", "Every group, its rule count and its machines."),
            ("creature secgroup list --format json", "The same for scripts (docs/json.md)."),
        ],
        "secgroup show" => &[("creature secgroup show web", "A group's rules and the machines in it.")],
        "secgroup delete" => &[(
            "creature secgroup delete web --yes",
            "Delete a group no machine is in.",
        )],
        "secgroup rule" | "secgroup rule add" => &[
            (
                "creature secgroup rule add ssh --direction in --proto tcp --port 22 --remote 10.0.0.0/24",
                "Let one subnet reach port 22 of the group's machines, live.",
            ),
            (
                "creature secgroup rule add web --direction in --proto tcp --port 80 --remote-group lb",
                "Let the machines of group lb reach port 80.",
            ),
            (
                "creature secgroup rule add web --direction in --proto icmp",
                "Answer pings from anywhere.",
            ),
        ],
        "secgroup rule remove" => &[(
            "creature secgroup rule remove web --direction out --proto any",
            "Remove the rule every group starts with: no outbound traffic but answers.",
        )],
        "secgroup attach" => &[(
            "creature secgroup attach web1 web",
            "Put a machine in a group: its NICs follow the group's rules at once.",
        )],
        "secgroup detach" => &[(
            "creature secgroup detach web1 web",
            "Take it out again.",
        )],
        "net" | "net create" => &[
            (
                "creature net create lan",
                "A NAT network on a free /24 with DHCP.",
            ),
            (
                "creature net create dmz --subnet 10.20.0.0/24 --mode isolated",
                "An isolated network.",
            ),
            (
                "creature net create flat --mode bridge --bridge br0",
                "Machines on an existing host bridge.",
            ),
        ],
        "net list" => &[("creature net list", "Every network.")],
        "net info" => &[(
            "creature net info lan",
            "One network, with the machines on it.",
        )],
        "net start" => &[("creature net start lan", "Start a stopped network.")],
        "net stop" => &[("creature net stop lan", "Stop a network.")],
        "net delete" => &[(
            "creature net delete lan --yes",
            "Delete a network no machine uses.",
        )],
        "net leases" => &[(
            "creature net leases lan",
            "Reservations beside the DHCP server's leases.",
        )],
        "template" | "template list" => &[(
            "creature template list",
            "Every template on the search path.",
        )],
        "template show" => &[(
            "creature template show tiny --resolved --set cpus=2",
            "A template after extends, variables and --set.",
        )],
        "template validate" => &[(
            "creature template validate ./web.toml",
            "Check a template file.",
        )],
        "template new" => &[(
            "creature template new web --from tiny",
            "A template of your own that extends tiny.",
        )],
        "image" | "image list" => &[(
            "creature image list",
            "The cached images and what uses them.",
        )],
        "image pull" => &[(
            "creature image pull debian-12",
            "Download a template's image, checking its checksum.",
        )],
        "image import" => &[(
            "creature image import vmlinuz initrd.img --name tiny-guest",
            "Cache local files as one image.",
        )],
        "image rm" => &[(
            "creature image rm tiny-guest",
            "Remove an image no machine uses.",
        )],
        "image prune" => &[
            (
                "creature image prune --dry-run",
                "What would go, what stays and why, and the space it would free.",
            ),
            (
                "creature image prune --yes",
                "Remove every cached image and root filesystem nothing needs (from cron).",
            ),
        ],
        "doctor" => &[
            ("creature doctor", "Check this host before the first create."),
            (
                "creature doctor --format json",
                "The checks as JSON: check, status, detail and fix for each.",
            ),
        ],
        "autostart" | "autostart enable" => &[(
            "creature autostart enable db --priority 10 --wait tcp:5432",
            "Start db first at boot and wait for its port.",
        )],
        "autostart disable" => &[("creature autostart disable db", "Do not start it at boot.")],
        "autostart run" => &[(
            "creature autostart run --dry-run",
            "The boot plan, without starting anything.",
        )],
        "autostart unit" => &[(
            "creature autostart unit > /etc/systemd/system/creature.service",
            "The systemd unit, with a stop timeout from the plan.",
        )],
        "autostart show" => &[(
            "creature autostart show db",
            "A machine's autostart settings.",
        )],
        "autostop" | "autostop run" => &[(
            "creature autostop run --budget 120",
            "Stop everything within 120 s (host shutdown).",
        )],
        "host" | "host info" => &[(
            "creature host info",
            "Host facts and which backends are usable.",
        )],
        "host add" => &[
            (
                "creature host add b qemu+ssh://root@b.example/system",
                "Name another libvirt host, reached over ssh; then `creature --host b create web -t tiny` makes a machine there.",
            ),
            (
                "creature host add lab2 qemu+tcp://10.0.0.2/system",
                "One reached over TCP, on a trusted network only.",
            ),
        ],
        "host list" => &[
            ("creature host list", "Every host, its URI, whether it answers now, its machines."),
            ("creature host list --format json", "The same for scripts (docs/json.md)."),
        ],
        "host remove" => &[("creature host remove b", "Forget a host creature has nothing on.")],
        "host maintenance" => &[(
            "creature host maintenance",
            "Refused on every backend (Nova marks it missing).",
        )],
        "host disable" => &[(
            "creature host disable b --reason ticket-4711",
            "Host b takes no new machines until `creature host enable b`.",
        )],
        "host enable" => &[(
            "creature host enable b",
            "Host b takes new machines again.",
        )],
        "matrix" => &[
            ("creature matrix", "The whole support matrix."),
            (
                "creature matrix --feature suspend",
                "One feature across the backends.",
            ),
        ],
        "repair" => &[
            (
                "creature repair --dry-run",
                "What is out of agreement after a crash, without changing anything.",
            ),
            (
                "creature repair --yes",
                "Bring records and backends back into agreement.",
            ),
        ],
        _ => &[],
    }
}

/// Pages a reader of the page at `path` will want next, beside creature(1).
pub fn see_also(path: &str) -> &'static [&'static str] {
    match path {
        "create" | "launch" => &[
            "creature-template(5)",
            "creature-template-list(1)",
            "creature-start(1)",
            "creature-net-create(1)",
        ],
        "start" | "stop" | "destroy" | "reboot" | "pause" | "unpause" | "suspend" | "restore" => &[
            "creature-list(1)",
            "creature-info(1)",
            "creature-autostart(1)",
        ],
        "delete" => &["creature-repair(1)", "creature-list(1)"],
        p if p.starts_with("volume") => &[
            "creature-volume-list(1)",
            "creature-info(1)",
            "creature-delete(1)",
        ],
        p if p.starts_with("snapshot") => &[
            "creature-snapshot-list(1)",
            "creature-image-list(1)",
            "creature-info(1)",
        ],
        "list" | "info" => &[
            "creature-log(1)",
            "creature-exec(1)",
            "creature-net-leases(1)",
        ],
        "log" | "console" => &["creature-exec(1)", "creature-info(1)"],
        "config-drive" => &[
            "creature-template(5)",
            "creature-create(1)",
            "creature-info(1)",
        ],
        "exec" | "shell" => &["creature-console(1)", "creature-template(5)"],
        "matrix" => &["creature-host-info(1)"],
        "repair" => &["creature-list(1)", "creature-delete(1)"],
        "doctor" => &[
            "creature-host-info(1)",
            "creature-autostart-unit(1)",
            "creature-repair(1)",
        ],
        p if p.starts_with("net") => &["creature-create(1)", "creature-net-leases(1)"],
        p if p.starts_with("secgroup") => &[
            "creature-secgroup-show(1)",
            "creature-secgroup-rule-add(1)",
            "creature-net-create(1)",
            "creature-template(5)",
        ],
        p if p.starts_with("template") => &["creature-template(5)", "creature-create(1)"],
        p if p.starts_with("image") => &["creature-create(1)", "creature-template(5)"],
        p if p.starts_with("auto") => &["creature-autostart-run(1)", "creature-autostop-run(1)"],
        p if p.starts_with("host") => &["creature-host-list(1)", "creature-list(1)"],
        _ => &["creature-matrix(1)"],
    }
}

#[cfg(test)]
mod tests {
    /// Every example parses against the real command line.
    #[test]
    fn every_example_parses() {
        let mut paths = vec![String::new()];
        let cmd = crate::cli::command();
        for c in cmd.get_subcommands() {
            paths.push(c.get_name().to_string());
            for s in c.get_subcommands() {
                paths.push(format!("{} {}", c.get_name(), s.get_name()));
            }
        }
        for p in paths {
            for (line, _) in super::of(&p) {
                let words: Vec<&str> = line.split_whitespace().take_while(|w| *w != ">").collect();
                let m = crate::cli::command()
                    .try_get_matches_from(&words)
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                // It runs the page's verb (or, on a group's page, one of its verbs).
                let mut chain = Vec::new();
                let mut at = &m;
                while let Some((name, sub)) = at.subcommand() {
                    chain.push(name.to_string());
                    at = sub;
                }
                assert!(
                    chain.join(" ").starts_with(&p),
                    "{p}: {line} runs {chain:?}"
                );
            }
        }
    }
}
