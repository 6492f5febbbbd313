"""Layotto JSON styles (our own minimal configs): address lists, uds, refs, tracing, flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pylotto.config import model
from pylotto.core.errors import ConfigError


def _write(tmp_path: Path, grpc_config: dict[str, Any], **extra: Any) -> Path:
    listener = {"name": "grpc", "address": extra.pop("address", "127.0.0.1:1"),
                "filter_chains": [{"filters": [{"type": "grpc", "config": {
                    "grpc_config": grpc_config}}]}],
                **extra.pop("listener", {})}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"servers": [{"listeners": [listener]}], **extra}))
    return path


def test_only_declared_listeners_and_etcd_address_list(tmp_path: Path) -> None:
    cfg = model.load(_write(tmp_path, {"config_store": {"c": {
        "type": "etcd", "address": ["127.0.0.1:2379", "127.0.0.1:2380"], "timeout": "10",
        "metadata": {"dialTimeout": "5"}}}}))
    assert (cfg.listen.dapr_grpc, cfg.listen.dapr_http, cfg.listen.actuator) == ("", "", "")
    spec = cfg.components[0]
    assert spec.metadata["endpoints"] == "127.0.0.1:2379,127.0.0.1:2380"
    assert spec.metadata["timeout"] == "10"
    assert spec.metadata["dialTimeout"] == "5"  # connecting to one member
    assert spec.metadata["layout"] == "layotto"  # Layotto's etcd keys


def test_uds_listener(tmp_path: Path) -> None:
    cfg = model.load(_write(tmp_path, {"hellos": {"h": {"type": "helloworld"}}},
                            address="/tmp/x.sock", listener={"network": "unix"}))
    assert cfg.listen.layotto_grpc == "unix:/tmp/x.sock"


def test_refs(tmp_path: Path) -> None:
    cfg = model.load(_write(tmp_path, {
        "secret_store": {"s": {"type": "local.env"}},
        "hellos": {"h": {"type": "helloworld", "secret_ref": [
            {"store_name": "s", "key": "k", "sub_key": "sk", "inject_as": "hello"},
            {"store_name": "s", "key": "no-sub-key"}],
            "component_ref": {"secret_store": "s"}}}}))
    hello = next(s for s in cfg.components if s.name == "h")
    assert hello.secrets["hello"].name == "k" and hello.secrets["hello"].key == "sk"
    assert hello.secrets["hello"].optional and len(hello.secrets) == 1
    assert any("'no-sub-key' has no sub_key" in w for w in cfg.warnings)
    assert hello.refs == {"secret_store": "s"}
    with pytest.raises(ConfigError, match="not configured"):
        model.load(_write(tmp_path, {"hellos": {"h": {
            "type": "helloworld", "component_ref": {"config_store": "nope"}}}}))


def test_tracing_metrics_flow_control(tmp_path: Path) -> None:
    cfg = model.load(_write(
        tmp_path, {"hellos": {"h": {"type": "helloworld"}}},
        tracing={"enable": True, "driver": "Zipkin", "config": {
            "reporter_endpoint": "http://127.0.0.1:9411/api/v2/spans"}},
        metrics={"sinks": [{"type": "prometheus", "config": {"port": 1234}}]},
        listener={"stream_filters": [{"type": "flowControlFilter", "config": {
            "global_switch": True, "limit_key_type": "PATH", "rules": [
                {"resource": "/spec.proto.runtime.v1.Runtime/SayHello", "grade": 1,
                 "threshold": 5}]}}]}))
    assert cfg.tracing is not None and cfg.tracing.exporter == "zipkin"
    assert cfg.listen.metrics == "0.0.0.0:1234"
    assert [(r.api, r.rate, r.refusal) for r in cfg.rate_limits] == [
        ("SayHello", 5.0, "layotto")]
    cfg = model.load(_write(tmp_path, {"hellos": {"h": {"type": "helloworld"}}},
                            tracing={"enable": True, "driver": "SkyWalking"}))
    assert cfg.tracing is None and any("SkyWalking" in w for w in cfg.warnings)


def test_unserved_sections_refused_by_name(tmp_path: Path) -> None:
    for section, api in (("sms", "Layotto's SMS API"), ("phone", "Layotto's phone API")):
        with pytest.raises(ConfigError, match=rf"section '{section}' \({api}\) is not served "
                                              r"by pylotto; served: hellos, state"):
            model.load(_write(tmp_path, {section: {"s": {"type": f"aliyun.{section}"}}}))


def test_file_section_with_layottos_s3_types(tmp_path: Path) -> None:
    """configs/config_file.json's shape: the metadata of a file store is a list of endpoints."""
    endpoint = {"endpoint": "127.0.0.1:9000", "accessKeyID": "layotto",
                "accessKeySecret": "layotto_secret", "SSL": False, "region": "us-east-1"}
    cfg = model.load(_write(tmp_path, {"file": {
        "file_demo": {"type": "minio", "metadata": [endpoint]},
        "s3": {"type": "aws.s3", "metadata": [endpoint, {**endpoint, "endpoint": "h:1"}]}}}))
    specs = {spec.name: spec for spec in cfg.components}
    assert [(s.capability, s.type) for s in specs.values()] == [("file", "minio"),
                                                                 ("file", "aws.s3")]
    assert specs["file_demo"].metadata == {"endpoints": [endpoint]}
    assert len(specs["s3"].metadata["endpoints"]) == 2
    with pytest.raises(ConfigError, match=r"file\.h: .*type 'hdfs'|unknown file component "
                                          r"type 'hdfs'"):
        model.load(_write(tmp_path, {"file": {"h": {"type": "hdfs"}}}))


def test_oss_section_served_with_s3_types_and_cloud_apis_refused_by_name(
        tmp_path: Path) -> None:
    keys = {"endpoint": "http://127.0.0.1:9000", "accessKeyID": "id",
            "accessKeySecret": "secret", "region": "us-east-1"}
    cfg = model.load(_write(tmp_path, {"oss": {
        "oss_demo": {"type": "aws.oss", "metadata": {"basic_config": keys}},
        "flat": {"type": "minio", "metadata": {**keys, "bucket": "b"}},
        "rados": {"type": "ceph", "metadata": {"basic_config": keys}}}}))
    specs = {spec.name: spec for spec in cfg.components}
    assert [(s.capability, s.type) for s in specs.values()] == [
        ("oss", "aws.oss"), ("oss", "minio"), ("oss", "ceph")]
    assert specs["oss_demo"].metadata == keys  # Layotto's basic_config nesting, read
    assert specs["flat"].metadata == {**keys, "bucket": "b"}
    for kind, service in (("aliyun.oss", "Aliyun OSS"), ("huaweicloud.oss", "Huawei Cloud OBS")):
        with pytest.raises(ConfigError, match=rf"oss\.o: type '{kind}' needs {service}, a cloud "
                                              r"service, which pylotto does not reach; "
                                              r"pylotto's oss types: aws\.oss, ceph, minio"):
            model.load(_write(tmp_path, {"oss": {"o": {"type": kind}}}))
    for kind, service in (("qiniu.oss", "Qiniu Kodo"), ("tencent.oss", "Tencent Cloud COS"),
                          ("aliyun.oss", "Aliyun OSS")):
        with pytest.raises(ConfigError, match=rf"file\.f: type '{kind}' needs {service}, a "
                                              r"cloud service, which pylotto does not reach; "
                                              r"pylotto's file types: aws\.s3, local, minio"):
            model.load(_write(tmp_path, {"file": {"f": {"type": kind}}}))
    with pytest.raises(ConfigError, match=r"unknown oss component type 'gcs'"):
        model.load(_write(tmp_path, {"oss": {"o": {"type": "gcs"}}}))


def test_email_section_served_with_smtp_and_the_cloud_type_refused_by_name(
        tmp_path: Path) -> None:
    cfg = model.load(_write(tmp_path, {"email": {"mail": {"type": "smtp.email", "metadata": {
        "host": "127.0.0.1", "port": "2525", "templatesPath": str(tmp_path)}}}}))
    [spec] = cfg.components
    assert (spec.capability, spec.name, spec.type) == ("email", "mail", "smtp.email")
    assert spec.metadata["templatesPath"] == str(tmp_path)
    with pytest.raises(ConfigError, match=r"email\.email_demo: type 'aliyun\.email' needs Aliyun "
                                          r"DirectMail, a cloud service, which pylotto does not "
                                          r"reach; pylotto's email types: smtp, smtp\.email"):
        model.load(_write(tmp_path, {"email": {"email_demo": {"type": "aliyun.email"}}}))
    with pytest.raises(ConfigError, match=r"unknown email component type 'aws\.ses'"):
        model.load(_write(tmp_path, {"email": {"e": {"type": "aws.ses"}}}))


def test_cryption_section_served_with_local_keys_and_cloud_kms_refused_by_name(
        tmp_path: Path) -> None:
    cfg = model.load(_write(tmp_path, {"cryption": {"keys": {
        "type": "dapr.localstorage", "metadata": {"path": str(tmp_path), "keyID": "k"}}}}))
    [spec] = cfg.components
    assert (spec.capability, spec.name, spec.type) == ("crypto", "keys", "dapr.localstorage")
    for kind, service in (("aliyun.kms", "Aliyun KMS"), ("aws.kms", "AWS KMS")):
        with pytest.raises(ConfigError, match=rf"cryption\.cryption_demo: type '{kind}' needs "
                                              rf"{service}, a cloud service, which pylotto does "
                                              r"not reach; pylotto's cryption types: "
                                              r"dapr\.localstorage"):
            model.load(_write(tmp_path, {"cryption": {"cryption_demo": {"type": kind}}}))
