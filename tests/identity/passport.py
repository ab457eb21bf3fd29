#!/usr/bin/env python3
"""An independent PASSporT implementation for the identity tests (PyJWT + cryptography).

    passport.py sign KEY.pem X5U ORIG DEST IAT ATTEST   -> prints a full Identity header value
    passport.py verify TOKEN CAFILE                     -> fetches x5u over HTTPS (trusting
        CAFILE), verifies the ES256 signature with the certificate's key, prints the
        header and claims as JSON
"""
import json
import ssl
import sys
import urllib.request

import jwt
from cryptography import x509


def sign(key_path, x5u, orig, dest, iat, attest):
    with open(key_path, "rb") as f:
        key = f.read()
    claims = {
        "attest": attest,
        "dest": {"tn": [dest]},
        "iat": int(iat),
        "orig": {"tn": orig},
        "origid": "4437c4f2-1d2f-4c2c-9a43-3b1b8b8c6a4e",
    }
    headers = {"ppt": "shaken", "typ": "passport", "x5u": x5u}
    token = jwt.encode(claims, key, algorithm="ES256", headers=headers)
    print(f"{token};info=<{x5u}>;alg=ES256;ppt=shaken")


def verify(token, cafile):
    header = jwt.get_unverified_header(token)
    context = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(header["x5u"], context=context, timeout=5) as response:
        pem = response.read()
    certificate = x509.load_pem_x509_certificates(pem)[0] if hasattr(
        x509, "load_pem_x509_certificates") else x509.load_pem_x509_certificate(pem)
    claims = jwt.decode(token, certificate.public_key(), algorithms=["ES256"],
                        options={"verify_aud": False})
    print(json.dumps({"header": header, "claims": claims}, sort_keys=True))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"sign": sign, "verify": verify}[command](*args)
