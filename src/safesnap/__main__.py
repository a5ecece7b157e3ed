from safesnap.cli.app import main

main()
