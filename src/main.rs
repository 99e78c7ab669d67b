fn main() {
    clap_complete::CompleteEnv::with_factory(creature::cli::command)
        .var(creature::generate::COMPLETE_VAR)
        .complete();
    let cli = creature::cli::parse();
    if let Err(e) = creature::run(cli) {
        eprintln!("error: {e}");
        for cause in e.causes() {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(e.kind().exit_code());
    }
}
