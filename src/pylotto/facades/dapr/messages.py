"""The Dapr message classes the shared RPC mixins build responses from (their ``pb``)."""

from __future__ import annotations

from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import (
    appcallback_pb2,
    binding_pb2,
    configuration_pb2,
    lock_pb2,
    metadata_pb2,
    pubsub_pb2,
    secret_pb2,
    state_pb2,
)


class DaprMessages:
    """A namespace with the attribute names the mixins use (``pb.GetStateResponse``...)."""

    # state
    GetStateResponse = state_pb2.GetStateResponse
    GetBulkStateResponse = state_pb2.GetBulkStateResponse
    BulkStateItem = state_pb2.BulkStateItem
    QueryStateResponse = state_pb2.QueryStateResponse
    QueryStateItem = state_pb2.QueryStateItem
    # pub/sub
    BulkPublishResponse = pubsub_pb2.BulkPublishResponse
    BulkPublishResponseFailedEntry = pubsub_pb2.BulkPublishResponseFailedEntry
    SubscribeTopicEventsResponse = pubsub_pb2.SubscribeTopicEventsResponseAlpha1
    SubscribeTopicEventsResponseInitial = pubsub_pb2.SubscribeTopicEventsResponseInitialAlpha1
    TopicEventRequest = appcallback_pb2.TopicEventRequest
    # invocation, bindings, secrets
    HTTPExtension = common_pb2.HTTPExtension
    InvokeResponse = common_pb2.InvokeResponse
    InvokeBindingResponse = binding_pb2.InvokeBindingResponse
    GetSecretResponse = secret_pb2.GetSecretResponse
    GetBulkSecretResponse = secret_pb2.GetBulkSecretResponse
    # configuration
    ConfigurationItem = common_pb2.ConfigurationItem
    GetConfigurationResponse = configuration_pb2.GetConfigurationResponse
    SubscribeConfigurationResponse = configuration_pb2.SubscribeConfigurationResponse
    UnsubscribeConfigurationResponse = configuration_pb2.UnsubscribeConfigurationResponse
    # lock
    TryLockResponse = lock_pb2.TryLockResponse
    UnlockResponse = lock_pb2.UnlockResponse
    # metadata
    GetMetadataResponse = metadata_pb2.GetMetadataResponse
    RegisteredComponents = metadata_pb2.RegisteredComponents
    PubsubSubscription = metadata_pb2.PubsubSubscription
    AppConnectionProperties = metadata_pb2.AppConnectionProperties
