from safesnap.cli import main

main()
