#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into tests/fuzz/corpus/<target>/.

The seeds are small hand-made inputs, one file each, committed with the project;
this script only spares writing msgpack by hand. Run it again after changing a
seed here (python3 tests/fuzz/make_seeds.py). The corpus a fuzzing run grows goes
to the build directory (scripts/fuzz.sh), never here.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def mp(value):
    """A minimal msgpack encoder: what proto/msg.c accepts."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value <= 0x7F:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack("b", value)
        if 0 <= value <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) < 32:
            return bytes([0xA0 | len(raw)]) + raw
        return b"\xd9" + bytes([len(raw)]) + raw if len(raw) < 256 else b"\xda" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, list):
        head = bytes([0x90 | len(value)]) if len(value) < 16 else b"\xdc" + struct.pack(">H", len(value))
        return head + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        head = bytes([0x80 | len(value)]) if len(value) < 16 else b"\xde" + struct.pack(">H", len(value))
        return head + b"".join(mp(k) + mp(v) for k, v in value.items())
    raise TypeError(value)


def msg(t, **fields):
    return mp(dict({"v": 1, "t": t}, **fields))


REF = {"execution_id": "ex-1", "phase_id": "plan", "attempt": 1}
SEEDS = {
    "msg": {
        "request": msg("request", id=7, op="workflow.get", args={"id": "research"}),
        "reply": msg("reply", id=7, status=200, body={"id": "research", "phases": [1, 2.5, None]}),
        "ready": msg("ready", worker="w1", slots=4, providers=["mock", "claude"],
                     running=[REF], draining=False, prefetch=2, waiting=[]),
        "heartbeat": msg("heartbeat"),
        "assign": msg("assign", execution_id="ex-1", workflow_id="wf", phase_id="plan", attempt=1,
                      prompt="Plan it", model=None, timeout_ms=60000, provider="mock",
                      inputs={"task": "x"}, repos=["acme/app"], allowed_tools=["Read"],
                      max_tokens=4000),
        "cancel": msg("cancel", **REF),
        "progress": msg("progress", kind="output", data="h\u00e9llo", detail={"n": -3}, **REF),
        "inject": msg("inject", role="user", message="stop", **REF),
        "result": msg("result", status="completed", output="done", error=None, exit_code=0,
                      usage={"input_tokens": 10, "cost_usd": 0.25}, **REF),
        "result_ack": msg("result_ack", **REF),
        "disconnect": msg("disconnect", reason="name held by another key"),
        "event": msg("event", seq=12, time=1700000000000, execution_id=None, type="execution.created",
                     data={"a": [True, False]}, status={"status": "running"}),
        "assign_artifacts": msg("assign", execution_id="ex-1", workflow_id="wf", phase_id="use",
                                attempt=1, prompt="Use it", model=None, timeout_ms=0, provider=None,
                                artifacts=[{"phase_id": "plan", "path": "sub/a.bin", "size": 4,
                                            "sha256": "0" * 64}],
                                input_artifacts=["plan"], output_artifacts=["report"]),
        "artifact_get": msg("artifact_get", from_phase="plan", path="sub/a.bin", offset=0, **REF),
        "artifact_data": msg("artifact_data", from_phase="plan", path="sub/a.bin", offset=0, size=4,
                             sha256="0" * 64, data="AAEC/w==", **REF),
        "deep": msg("reply", id=1, status=200, body=[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]),
    },
    "bodies": {
        "workflow": b"\x00" + json.dumps({
            "id": "research", "name": "Research", "workflow_type": "research",
            "classification": "simple",
            "input_declarations": [{"name": "topic", "required": True, "default": "x"}],
            "phases": [{"phase_id": "a", "name": "A", "order": 0, "prompt_template": "Do {{topic}}",
                        "model": "sonnet", "timeout_seconds": 600, "max_attempts": 2,
                        "retries": 1, "retry_backoff_seconds": 1.5, "max_tokens": 4000,
                        "provider": "mock", "allowed_tools": ["Read", "Grep"]},
                       {"phase_id": "b", "name": "B", "order": 1, "prompt_template": "Then"}]}).encode(),
        "workflow_duplicate": b"\x00" + json.dumps({
            "name": "D", "phases": [{"phase_id": "a", "name": "A", "order": 0, "prompt_template": "x"},
                                    {"phase_id": "a", "name": "B", "order": 0, "prompt_template": "y"}]}).encode(),
        "execute": b"\x01" + json.dumps({"inputs": {"topic": "fuzz"}, "task": "t", "repos": ["a/b"],
                                         "provider": "mock", "max_budget_usd": 2.5}).encode(),
        "phase_update": b"\x02" + json.dumps({"prompt_template": "New", "model": None,
                                              "timeout_seconds": 86400, "allowed_tools": []}).encode(),
        "cancel": b"\x03" + json.dumps({"reason": "because"}).encode(),
        "pause_empty": b"\x04",
        "resume": b"\x05{}",
        "inject": b"\x06" + json.dumps({"message": "look again", "role": "system"}).encode(),
        "content": b"\x07" + json.dumps({"content": "id: x\nname: X\n"}).encode(),
        "bad": b"\x00{\"name\": 5, \"phases\": [{\"order\": -1}], \"extra\": true",
    },
    "route": {
        "health": b"GET /health",
        "list": b"GET /workflows?workflow_type=research&include_archived=yes&page=2&page_size=10",
        "executions": b"GET /executions?status=running&workflow_id=wf%2D1&page=1",
        "active": b"GET /workflows/executions/active?limit=5",
        "execute": b"POST /workflows/research/execute",
        "phase": b"PUT /workflows/research/phases/plan",
        "output": b"GET /executions/ex-1/phases/plan/output",
        "nul": b"GET /workflows/research%00x",
        "method": b"PATCH /executions/ex-1",
        "runs": b"GET /workflows/w%C3%A9/runs?page_size=0",
        "yaml": b"POST /workflows/from-yaml?id=x&name=Y",
        "sse": b"GET /sse/executions/ex-1",
    },
    "last_event_id": {
        "plain": b"42",
        "blanks": b" \t7 ",
        "max": b"9223372036854775807",
        "over": b"9223372036854775808",
        "empty": b"",
        "word": b"abc",
        "sign": b"-1",
    },
    "claude_stream": {
        "session": "\n".join(json.dumps(line) for line in [
            {"type": "system", "subtype": "init", "model": "claude-sonnet-4-5"},
            {"type": "assistant", "message": {"id": "m1", "model": "claude-sonnet-4-5",
                                              "content": [{"type": "text", "text": "Looking."}],
                                              "usage": {"input_tokens": 10, "output_tokens": 2,
                                                        "cache_read_input_tokens": 5}}},
            {"type": "assistant", "message": {"id": "m1", "content": [
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}],
                "usage": {"input_tokens": 10, "output_tokens": 2}}},
            {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1",
                                                      "is_error": False}]}},
            {"type": "result", "subtype": "success", "is_error": False, "result": "42",
             "usage": {"input_tokens": 20, "output_tokens": 4}, "total_cost_usd": 0.01,
             "duration_ms": 1234, "num_turns": 2},
        ]).encode() + b"\n",
        "not_json": b"plain text\r\n{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"cont\n\xc3\xa9\n",
        "error": b"{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"is_error\":true}\n",
    },
    "anthropic_sse": {
        "answer": (b"event: message_start\n"
                   b"data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-haiku-4-5\","
                   b"\"usage\":{\"input_tokens\":15,\"cache_read_input_tokens\":1,\"output_tokens\":1}}}\n\n"
                   b": a comment\n"
                   b"event: content_block_delta\r\n"
                   b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                   b"\"text\":\"Hello, w\xc3\xb6rld\"}}\r\n\r\n"
                   b"event: message_delta\n"
                   b"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                   b"\"usage\":{\"output_tokens\":35}}\n\n"
                   b"event: message_stop\n"
                   b"data: {\"type\":\"message_stop\"}\n\n"),
        "error": (b"event: error\n"
                  b"data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                  b"\"message\":\"Overloaded\"}}\n\n"),
        "multiline": b"event: message_stop\ndata: {\"type\":\ndata: \"message_stop\"}\n",
    },
}


def yaml_seeds():
    seeds = {}
    for name in ("research.yaml", "pr-review.yaml"):
        with open(os.path.join(ROOT, "workflows", name), "rb") as f:
            seeds[name.replace(".yaml", "")] = f.read()
    package = os.path.join(ROOT, "workflows", "implement-and-review")
    with open(os.path.join(package, "workflow.yaml"), "rb") as f:
        doc = f.read()
    prompts = []
    for name in ("plan.md", "implement.md", "review.md"):
        with open(os.path.join(package, "prompts", name), "rb") as f:
            prompts.append(f.read())
    # The fuzz target writes the parts as prompts/a.md, prompts/b.md and c.md.
    doc = (doc.replace(b"prompts/plan.md", b"prompts/a.md")
              .replace(b"prompts/implement.md", b"prompts/b.md")
              .replace(b"prompts/review.md", b"c.md"))
    seeds["package"] = b"\n%%%%\n".join([doc] + prompts)
    # ../outside.md exists (fuzz_yaml.c): it must be refused, never read.
    seeds["escape"] = (b"name: E\nphases:\n  - id: a\n    name: A\n    order: 1\n"
                       b"    prompt_file: ../outside.md\n%%%%\nx\n%%%%\ny\n%%%%\nz\n")
    seeds["front_matter"] = (b"name: F\nphases:\n  - id: a\n    name: A\n    order: 1\n"
                             b"    prompt_file: prompts/a.md\n%%%%\n---\nmodel: sonnet\n"
                             b"allowed-tools: Read, Grep\nmax-tokens: 4000\ntimeout-seconds: 600\n"
                             b"argument-hint: [issue]\ndescription: Plan\n---\nPlan {{task}}\n")
    return seeds


def main():
    SEEDS["yaml"] = yaml_seeds()
    for target, seeds in SEEDS.items():
        directory = os.path.join(HERE, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
