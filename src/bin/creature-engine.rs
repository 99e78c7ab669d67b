//! `creature-engine`: the whole of creature. Users run `creature` (the
//! front, src/main.rs), which answers `--version` and `matrix` without the
//! backend libraries and becomes this program for everything else.

fn main() {
    clap_complete::CompleteEnv::with_factory(creature::cli::command)
        .var(creature::generate::COMPLETE_VAR)
        .complete();
    let cli = creature::cli::parse();
    if let Err(e) = creature::run(cli) {
        eprintln!("{}", e.report(None));
        std::process::exit(e.kind().exit_code());
    }
}
