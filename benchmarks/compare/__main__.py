from benchmarks.compare.run import main

main()
