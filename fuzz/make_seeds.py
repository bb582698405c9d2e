#!/usr/bin/env python3
"""Writes the seed corpora fuzz/seeds/<target>/ from the plugins' test fixtures.

Run from anywhere: `python3 fuzz/make_seeds.py`. Each seed is the raw network input of one
fixture: a TMC binary frame, a Douyin push body, a JD stream body (its chunks joined). Only
small inputs are kept (< 4 KiB, libFuzzer's default -max_len).
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
MAX = 4096


def fixtures(plugin, names):
    for name in names:
        path = ROOT / "plugins" / plugin / "tests" / "fixtures" / f"{name}.json"
        yield name, json.loads(path.read_text(encoding="utf-8"))


def write(target, name, data):
    if len(data) > MAX:
        return
    out = SEEDS / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)


# Taobao: every distinct TMC frame of a few fixtures (CONNECTACK, data messages of each topic
# family, SENDACK, malformed frames).
TAOBAO = [
    "chat_text", "chat_image", "trade_buyer_pay_ids_above_2_53", "refund_created",
    "dead_letter_envelope", "malformed_frames", "server_sendack_and_other_kinds",
    "tmc_id_integer_formats", "connectack_refused_invalid_sign",
]
seen = set()
for name, fx in fixtures("taobao", TAOBAO):
    n = 0
    for step in fx["steps"]:
        if step.get("do") != "frame":
            continue
        data = bytes.fromhex("".join(step["hex"].split()))
        if data in seen:
            continue
        seen.add(data)
        write("taobao_tmc_frame", f"{name}-{n}.bin", data)
        n += 1

# Douyin: the push bodies (the target signs them itself).
DOUYIN = [
    "address_check_tag0", "chat_text", "chat_image", "chat_order", "chat_product",
    "chat_numeric_ids", "data_as_object", "dead_letter_bad_data", "dead_letter_invalid_utf8",
    "dead_letter_not_array", "mixed_batch", "order_paid_101", "refund_requested_200",
]
for name, fx in fixtures("douyin", DOUYIN):
    for i, push in enumerate(fx["pushes"]):
        body = push["body"].encode() if "body" in push else bytes.fromhex("".join(push["body_hex"].split()))
        write("douyin_push", f"{name}-{i}.json", body)

# JD: the stream body of each stream fixture, chunks joined (the target re-splits it).
JD = [
    "chat_text_object", "chat_text_string_msg", "chat_image", "chat_order_ids_above_2_pow_53",
    "chat_sku_numeric_id", "chat_unknown_msg_type", "crlf_and_blank_lines", "dead_letters",
    "invalid_json_lines", "packet_codes", "raw_bytes_not_utf8", "split_mid_line_and_utf8",
    "business_types_not_mapped", "stream_connect_heartbeat",
]
for name, fx in fixtures("jd", JD):
    body = b""
    for step in fx["steps"]:
        if "chunk" in step:
            body += step["chunk"].encode()
        elif "chunk_hex" in step:
            body += bytes.fromhex(step["chunk_hex"])
        elif "split" in step:
            body += step["split"]["text"].encode()
    if body:
        write("jd_stream", f"{name}.txt", body)
