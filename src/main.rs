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
