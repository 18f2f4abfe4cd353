#!/usr/bin/env python3
"""Verifies a JWT with Google's own library (google-auth). TEST-ONLY helper.

usage: verify_jwt.py <token> <cert.pem> <audience>
Prints the decoded claims as JSON (sorted keys) and exits 0, or prints the error and exits 1.
"""
import json
import sys

import google.auth.jwt


def main():
    token, cert_path, audience = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(cert_path) as f:
        cert = f.read()
    try:
        claims = google.auth.jwt.decode(token, certs=cert, audience=audience)
    except Exception as error:  # noqa: BLE001 - any failure is a rejection
        print("REJECTED: %s: %s" % (type(error).__name__, error))
        return 1
    header = google.auth.jwt.decode_header(token)
    print(json.dumps({"header": header, "claims": claims}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
