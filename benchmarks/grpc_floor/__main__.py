from benchmarks.grpc_floor.run import main

main()
