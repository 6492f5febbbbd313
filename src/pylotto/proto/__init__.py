"""Generated gRPC code and the .proto sources it comes from."""
