//! Autostart at host boot and autostop at shutdown: settings, plans (pure)
//! and their execution, and the systemd unit that runs them.

pub mod plan;
pub mod run;
pub mod settings;
pub mod unit;

/// The boot and shutdown story, for creature(1).
pub const STORY: &[&str] = &[
    "Enable the shipped unit (systemctl enable creature.service). At boot it runs `creature autostart run`: \
     networks marked autostart come up first, then machines with autostart enabled start in batches, \
     highest priority first. Machines of a batch start in parallel (as many at once as the host has CPUs, \
     or --concurrency), a failed start is retried up to three times, and the next batch starts only when \
     every machine of this one is ready: running, holding its DHCP lease, or answering on a TCP port, as \
     its `wait` setting says, within its wait_timeout. The exit status says whether everything started; \
     a partial failure names the machines.",
    "At shutdown the unit runs `creature autostop run`: running machines stop in the reverse order, lowest \
     priority first, every machine of a batch at once, each by its stop_action (shutdown, suspend or force) \
     and powered off when its own stop_timeout runs out, so one stubborn guest delays no other. The whole \
     run fits a budget (--budget; `creature autostart unit` prints the unit with TimeoutStopSec computed \
     from the plan, so systemd never kills a shutdown halfway). The machines found running are recorded, \
     and `creature autostart run --restore-last-state` brings back exactly those.",
    "Compared with libvirt-guests, which starts and stops VMs one after another (or all at once) with one \
     timeout for all, and lxc-autostart, which orders containers by lxc.start.order and groups but knows \
     no VMs and cannot wait for a lease: creature handles VMs and containers in one plan, waits for what \
     the next batch needs, retries, bounds parallelism, and gives each machine its own stop timeout. \
     `--dry-run` prints the plan with each batch's worst-case time.",
];
