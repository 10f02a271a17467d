from dbsh.agent.client import main

main()
