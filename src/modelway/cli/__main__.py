from modelway.cli import main

main()
