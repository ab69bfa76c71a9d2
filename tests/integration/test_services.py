"""The three real services answer: what every other integration test stands on."""

from __future__ import annotations

import io
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from minio import Minio

from tests.services.endpoints import KafkaEndpoint, PostgresEndpoint


def test_postgres_round_trip(pg_db: PostgresEndpoint) -> None:
    with psycopg.connect(pg_db.dsn, password=pg_db.password) as conn:
        conn.execute("CREATE TABLE t (meter_id text PRIMARY KEY, power_w double precision)")
        conn.execute("INSERT INTO t VALUES (%s, %s), (%s, %s)", ("a", 1.5, "b", 2.0))
        conn.execute(
            "INSERT INTO t VALUES (%s, %s) ON CONFLICT (meter_id) DO UPDATE SET power_w = excluded.power_w",
            ("a", 3.0),
        )
        rows = conn.execute("SELECT meter_id, power_w FROM t ORDER BY meter_id").fetchall()
    assert rows == [("a", 3.0), ("b", 2.0)]


def test_postgres_refuses_a_wrong_password(pg_db: PostgresEndpoint) -> None:
    if pg_db.provider == "env":
        return  # a shared stack may use trust auth; nothing to prove there
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_db.dsn, password="not-the-password", connect_timeout=5).close()


def test_s3_put_list_get(minio_client: Minio, bucket_factory) -> None:
    bucket = bucket_factory()
    body = b"meter_id,power_w\na,1.5\n"
    minio_client.put_object(
        bucket, "readings/date=2026-01-01/hour=00/x.csv", io.BytesIO(body), len(body)
    )
    names = [
        o.object_name for o in minio_client.list_objects(bucket, prefix="readings/", recursive=True)
    ]
    assert names == ["readings/date=2026-01-01/hour=00/x.csv"]
    response = minio_client.get_object(bucket, names[0])
    try:
        assert response.read() == body
    finally:
        response.close()
        response.release_conn()


def test_kafka_produce_and_consume(kafka_service: KafkaEndpoint) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka_service.bootstrap_servers, "acks": "all"})
    for i in range(10):
        producer.produce(topic, key=b"m", value=str(i).encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_service.bootstrap_servers,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []
    try:
        for _ in range(60):
            for message in consumer.consume(10, timeout=1.0):
                assert message.error() is None
                seen.append(message.value())
            if len(seen) >= 10:
                break
    finally:
        consumer.close()
    assert seen == [str(i).encode() for i in range(10)]
