from promptomatix.launch import main

main()
