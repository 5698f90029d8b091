#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (docs/fuzzing.md).

Each seed is a valid input in the layout its target reads (a selector byte, control bytes,
then the data), so that fuzzing starts from documents the parsers accept. Deterministic:
re-running it rewrites the same files. Usage: python3 fuzz/seed.py
"""

import hashlib
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def envelope(kind, payload):
    blob = b"CFRB" + bytes([1, kind, 0, 0]) + struct.pack(">Q", len(payload)) + payload
    return blob + hashlib.sha256(blob).digest()


H = "ab" * 32
H2 = "cd" * 32
FILE = {"path": "segments/_0.cfs", "kind": "file", "size": 10, "mode": 0o644,
        "mtime_ns": 1, "inode": 2, "ctime_ns": 3, "chunks": [H]}
LINK = {"path": "current", "kind": "symlink", "size": 0, "mode": 0o777, "mtime_ns": 1,
        "inode": 3, "ctime_ns": 3, "target": "segments/_0.cfs"}
STATS = {"total_file_count": 1, "total_size_in_bytes": 10, "incremental_file_count": 1,
         "incremental_size_in_bytes": 10, "uploaded_bytes": 99}
SUMMARY = {"name": "snap-1", "uuid": "u1", "state": "SUCCESS", "indices": ["logs"],
           "start_time_ms": 1, "end_time_ms": 2,
           "shards": {"total": 1, "failed": 0, "successful": 1},
           "include_global_state": False, "metadata": {"taken_by": "fuzz", "n": [1, 2.5]},
           "version": "0.1.0", "stats": STATS}
METADATA = {
    0: {"uuid": "r1", "generation": 3, "snapshots": [SUMMARY],
        "indices": {"logs": {"id": "i1", "snapshots": {"u1": {"meta_id": "m1", "shards": [0]}},
                             "shard_generations": ["g1", None]}}},
    1: SUMMARY,
    2: {"indices": ["logs"], "include_global_state": True},
    3: {"name": "logs", "number_of_shards": 1, "number_of_replicas": 0},
    4: {"snapshots": ["u1"], "packs": [{"id": H2, "size": 40,
                                         "chunks": [[H, 0, 10, 10, 0, 1]]}]},
    5: {"index": "logs", "shard": 0, "files": [FILE, LINK], "stats": STATS,
        "start_time_ms": 1, "time_ms": 2},
    6: {"node_name": "n1", "node_id": "id1", "pid": 7, "repository_uuid": "r1",
        "operation": "snapshot", "holder": "h1", "acquired_at": "2024-03-01T00:00:00Z",
        "renewed_at": "2024-03-01T00:00:10Z", "expires_at": "2024-03-01T00:01:00Z",
        "token": 4},
    7: {"chunks": [[H, 0, 10, 10, 0, 0]]},
    8: {"node": "n1", "seed": "s", "nonce": "x"},
}


def metadata():
    for sel, value in METADATA.items():
        payload = json.dumps(value, separators=(",", ":")).encode()
        # mode 0: a complete blob; mode 1: the target wraps the payload itself.
        write("metadata", f"kind{sel}-blob", bytes([sel, 0]) + envelope(sel + 1, payload))
        write("metadata", f"kind{sel}-wrap", bytes([sel, 1]) + bytes(13) + payload)
        write("metadata", f"kind{sel}-zstd", bytes([sel, 3]) + bytes(13) + payload)


def pack_index():
    # mode 0: a real one-chunk pack, stored uncompressed.
    data = b"0123456789"
    h = hashlib.sha256(data).hexdigest()
    index = envelope(8, json.dumps({"chunks": [[h, 0, 10, 10, 0, 0]]}).encode())
    pack = data + index + struct.pack(">I", len(index)) + b"CFRP"
    write("pack_index", "one-chunk", bytes([0]) + pack)
    # mode 1: 10 filler bytes and an index payload.
    write("pack_index", "index-json", bytes([1, 0, 10])
          + json.dumps({"chunks": [[H, 0, 10, 10, 0, 0]]}).encode())
    # mode 2: chunks for PackWriter, undamaged and damaged.
    chunks = bytes([5]) + b"hello" + bytes([3]) + b"abc" + bytes([40]) + bytes(range(40))
    write("pack_index", "writer-clean", bytes([2, 0, 0, 0]) + chunks)
    write("pack_index", "writer-flip", bytes([2, 0, 60, 0x10]) + chunks)


XML = {
    0: b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken><EncodingType>url</EncodingType><Contents><Key>p/a%20b</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>"fba9dede5f27731c9771645a39863328"</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>p/c/</Prefix></CommonPrefixes></ListBucketResult>',
    1: b'<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker><MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated><Upload><Key>k</Key><UploadId>u</UploadId><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload></ListMultipartUploadsResult>',
    2: b'<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>',
    3: b'<CompleteMultipartUploadResult><Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>',
    4: b'<CopyObjectResult><LastModified>2009-10-28T22:32:00Z</LastModified><ETag>"9b2cf535f27731c974343645a3985328"</ETag></CopyObjectResult>',
    5: b'<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>',
}


def s3_xml():
    for sel, body in XML.items():
        write("s3_xml", f"op{sel}", bytes([sel]) + body)
    headers = (b'etag: "abc"\ncontent-length: 10\ncontent-range: bytes 0-9/100\n'
               b'last-modified: Wed, 12 Oct 2009 17:50:00 GMT\nx-amz-bucket-region: eu-west-1\n')
    write("s3_xml", "headers", bytes([6, 0, 206, len(headers)]) + headers)
    err = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code>'
           b'<Message>bad region</Message><Region>eu-west-1</Region><RequestId>4442587FB7D0A2F9</RequestId>'
           b'<HostId>h</HostId></Error>')
    hdr = b"retry-after: 3\nx-amz-request-id: r\n"
    write("s3_xml", "error-400", bytes([7, 1, 144, len(hdr)]) + hdr + err)
    slow = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
    write("s3_xml", "error-503", bytes([15, 1, 247, 0]) + slow)
    redirect = (b"<Error><Code>PermanentRedirect</Code><Message>m</Message>"
                b"<Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint></Error>")
    write("s3_xml", "error-301-200", bytes([23, 0, 200, 0]) + redirect)


def keystore():
    # mode 2: plaintext payloads (count, then name, kind, value).
    def entry(name, kind, value):
        return struct.pack(">H", len(name)) + name + bytes([kind]) + struct.pack(">I", len(value)) + value
    payload = (struct.pack(">I", 2) + entry(b"s3.client.default.access_key", 0, b"AKIAEXAMPLE")
               + entry(b"s3.client.default.secret_key", 1, bytes(range(8))))
    write("keystore", "payload", bytes([2]) + bytes(44) + payload)
    write("keystore", "payload-empty", bytes([2]) + bytes(44) + struct.pack(">I", 0))
    # mode 1: a header with cheap parameters and a body (the harness seals the trailer).
    header = (b"COFFERKS" + struct.pack(">H", 1) + bytes([1, 1]) + struct.pack(">III", 8, 1, 1)
              + bytes(32) + bytes(12) + bytes(32) + struct.pack(">Q", 16))
    write("keystore", "header", bytes([1]) + header + bytes(16))
    write("keystore", "header-4gib", bytes([1]) + header[:12] + struct.pack(">I", 4 << 20)
          + header[16:] + bytes(16))


def api_params():
    bodies = [
        b'{"indices":"logs-*,-logs-old","ignore_unavailable":true,"include_global_state":false,'
        b'"metadata":{"taken_by":"fuzz"},"partial":"false"}',
        b'{"indices":["a","b"],"rename_pattern":"(.+)","rename_replacement":"restored_$1",'
        b'"index_settings":{"index.number_of_replicas":0},"include_aliases":false}',
        b'{"type":"fs","settings":{"location":"backups","compress":"true","chunk_size":"1gb",'
        b'"max_snapshot_bytes_per_sec":"40mb","readonly":false}}',
        b'{"type":"s3","settings":{"bucket":"b","client":"default","base_path":"p",'
        b'"buffer_size":"5mb","canned_acl":"private","storage_class":"standard"}}',
        b"",
    ]
    queries = [b"wait_for_completion=true&master_timeout=30s", b"verify=false&pretty",
               b"size=-1&from=10", b"size=1mb&verify"]
    for i, body in enumerate(bodies):
        q = queries[i % len(queries)]
        write("api_params", f"req{i}", bytes([i * 5 + (i & 2), len(q)]) + q + body)


def api_names():
    exprs = [b"<nightly-{now/d}>", b"<logs-{now-1M/M{yyyy.MM}}>",
             b"<n-{now+1w/w{yyyy-MM-dd|UTC}}>", b"logs-*,-logs-old,metrics",
             b"_all", b"<esc\\{x\\}-{now/h{HH}}>"]
    names = b"logs-2024,logs-old,metrics,other,*"
    for i, e in enumerate(exprs):
        write("api_names", f"expr{i}", bytes([i, len(e)]) + e + names)


if __name__ == "__main__":
    metadata()
    pack_index()
    s3_xml()
    keystore()
    api_params()
    api_names()
