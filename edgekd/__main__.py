from edgekd.cli.main import main

main()
