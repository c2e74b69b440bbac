from promptomatix.cli.app import main

main()
