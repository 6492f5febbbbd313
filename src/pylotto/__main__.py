from pylotto.cli import main

main()
