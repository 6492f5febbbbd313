"""The image's HEALTHCHECK: exit 0 when the sidecar's actuator answers its liveness probe.

PYLOTTO_HEALTH_URL overrides the probe's URL (default: the actuator's default port on loopback).
Standard library only, so that it runs on the base image's python3.
"""

import os
import sys
import urllib.request

URL = os.environ.get("PYLOTTO_HEALTH_URL", "http://127.0.0.1:34999/actuator/health/liveness")

try:
    with urllib.request.urlopen(URL, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:  # URLError, HTTPError (a non-2xx answer), refused, timed out
    print(f"{URL}: {error}", file=sys.stderr)
    sys.exit(1)
