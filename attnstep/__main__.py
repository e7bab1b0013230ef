from attnstep.cli import main

main()
