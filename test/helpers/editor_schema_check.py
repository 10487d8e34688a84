"""Validates JSON files as an editor does with their "$schema": the reference is resolved relative to
the file's own directory (as VS Code and JetBrains do for a relative path), the schema is loaded from
there, checked as a JSON Schema and the file validated against it (python3-jsonschema, Debian).

Usage: /usr/bin/python3 editor_schema_check.py FILE...
Prints one JSON line per file: {"file", "schema" (the resolved path), "errors": [...]}; exits 1 when a
reference does not resolve or a file is not valid.
"""
import json
import os
import sys

from jsonschema.validators import validator_for

failed = False
for name in sys.argv[1:]:
    with open(name, encoding="utf-8") as f:
        document = json.load(f)
    ref = document.get("$schema")
    result = {"file": name, "schema": None, "errors": []}
    if not isinstance(ref, str):
        result["errors"].append("no \"$schema\"")
    else:
        target = ref if os.path.isabs(ref) else os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(name)), ref))
        result["schema"] = target
        if not os.path.isfile(target):
            result["errors"].append(f"\"$schema\" {ref} does not resolve: {target} does not exist")
        else:
            with open(target, encoding="utf-8") as f:
                schema = json.load(f)
            cls = validator_for(schema)
            cls.check_schema(schema)
            result["errors"] = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in cls(schema).iter_errors(document)]
    failed = failed or bool(result["errors"])
    print(json.dumps(result))
sys.exit(1 if failed else 0)
