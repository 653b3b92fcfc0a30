from oipserve.cli import main

main()
