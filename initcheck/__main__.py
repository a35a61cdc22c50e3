from initcheck.cli import main

main()
