"""RPC mixins shared by the Layotto and Dapr gRPC facades.

For these RPCs the two protos have messages with the same names and fields, so one mixin serves
both: each servicer sets ``pb`` to the namespace its response messages come from.
"""
