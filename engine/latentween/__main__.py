from latentween.cli import main

raise SystemExit(main())
