"""The publisher's canary on the local runtime: the layer zip under awslambdaric, S3 on moto.

:class:`LocalCanary` implements ``coverage_cdk_constructs.canary.Canary``:
for each region it unzips that region's layer (as Lambda would into
``/opt``, modes kept, then read-only), runs the canary function on this
machine's Python in zero-code mode against moto's S3 server, and judges the
answer and the data with the same :func:`~coverage_cdk_constructs.canary.judge`
as the AWS canary.
"""

from __future__ import annotations

import os
import stat
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path

from coverage_cdk_constructs.canary import (
    CANARY_CODE_DIR,
    CANARY_EVENT,
    CanaryResult,
    canary_environment,
    executed_lines,
    judge,
)
from coverage_wrapper.constants import ZERO_CODE_HANDLER
from test_stack.functions import LambdaFunction
from test_stack.layer import Layer
from test_stack.pool import LocalLambda
from test_stack.s3_server import s3_client, s3_environment

#: The variable that tells the canary's probe where the layer is (``/opt`` on Lambda).
LAYER_ROOT_VARIABLE = "LAMBDA_COVERAGE_CANARY_LAYER"


def extract_layer(archive: Path, root: Path) -> Layer:
    """Unzip a layer into ``root`` as Lambda does: Unix modes kept, then everything read-only."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            target = Path(zipped.extract(info, root))
            mode = info.external_attr >> 16 & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        Path(directory).chmod(0o555)
    return Layer(root)


def make_writable(root: Path) -> None:
    """Undo :func:`extract_layer`'s read-only modes so that the folder can be removed."""
    for directory, _, _ in os.walk(root):
        Path(directory).chmod(0o755)


class LocalCanary:
    """Runs the canary function with a layer zip on the local runtime, one zip per region.

    ``layers`` is one zip for every region or ``{region: zip}`` (a region
    missing from it fails the check, as a region whose layer is missing would).
    """

    def __init__(
        self,
        layers: Path | Mapping[str, Path],
        *,
        s3_endpoint: str,
        bucket: str,
        work_dir: Path,
    ) -> None:
        self._layers = layers
        self.s3_endpoint = s3_endpoint
        self.bucket = bucket
        self.work_dir = work_dir

    def check(self, region: str, layer_arn: str, architecture: str) -> CanaryResult:
        """Run the canary for ``region``'s layer zip; judge it."""
        archive = self._layers if isinstance(self._layers, Path) else self._layers.get(region)
        if archive is None:
            return CanaryResult(region, layer_arn, None, (f"no layer zip for {region}",))
        run = uuid.uuid4().hex[:12]
        work = self.work_dir / f"{region}-{run}"
        layer = extract_layer(archive, work / "opt")
        prefix = f"canary/{region}/{run}/"
        function = LambdaFunction(
            name="lambda-coverage-canary",
            code_dir=CANARY_CODE_DIR,
            handler=ZERO_CODE_HANDLER,
            region=region,
            layer=layer,
            environment={
                **canary_environment(self.bucket, prefix),
                LAYER_ROOT_VARIABLE: str(layer.root),
            },
        )
        try:
            with LocalLambda(
                [function],
                work_dir=work / "runtime",
                environment=s3_environment(self.s3_endpoint, region),
                idle_timeout=None,
            ) as pool:
                result = pool.invoke(function.name, CANARY_EVENT)
            # The pool is closed: every container has shut down and flushed its data.
            answer = result.json() if result.ok else result.payload.decode(errors="replace")
            lines = executed_lines(s3_client(self.s3_endpoint, region), self.bucket, prefix)
        finally:
            make_writable(layer.root)
        return judge(region, layer_arn, architecture, answer, lines)
