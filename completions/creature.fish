complete --keep-order --exclusive --command creature --arguments "(COMPLETE=fish creature -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
