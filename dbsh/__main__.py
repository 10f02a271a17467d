from dbsh.cli import main

main()
