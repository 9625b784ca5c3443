"""The functions of the test stack: where their code is and how Lambda calls them.

The code folders are plain folders: the local runtime uses each one as the
task root, and the CDK test stack packages the same folder as the function's
code asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final

from test_stack.layer import Layer

APP_ROOT: Final = Path(__file__).resolve().parent.parent
REPO_ROOT: Final = APP_ROOT.parent.parent
FUNCTIONS_ROOT: Final = APP_ROOT / "functions"
EXAMPLES_ROOT: Final = REPO_ROOT / "apps" / "examples" / "functions"


@dataclass(frozen=True)
class LambdaFunction:
    """One function's configuration, as Lambda would hold it."""

    name: str
    code_dir: Path
    handler: str
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout: float = 30.0
    memory_mb: int = 256
    version: str = "$LATEST"
    region: str = "us-east-1"
    account: str = "123456789012"
    #: What Lambda would extract into ``/opt`` for this function.
    layer: Layer | None = None

    @property
    def arn(self) -> str:
        """The function's ARN (unqualified for ``$LATEST``)."""
        base = f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"
        return base if self.version == "$LATEST" else f"{base}:{self.version}"

    def with_environment(self, **values: str) -> LambdaFunction:
        """A copy with ``values`` added to (and winning over) the environment."""
        return replace(self, environment=MappingProxyType({**self.environment, **values}))


MAIN: Final = LambdaFunction(
    name="main", code_dir=FUNCTIONS_ROOT / "main", handler="calculator.app.handler"
)
SIMPLE: Final = LambdaFunction(
    name="simple", code_dir=FUNCTIONS_ROOT / "simple", handler="echo.handler"
)
ERROR: Final = LambdaFunction(
    name="error", code_dir=FUNCTIONS_ROOT / "error", handler="faults.handler"
)
EXAMPLE_SIMPLE: Final = LambdaFunction(
    name="example-simple", code_dir=EXAMPLES_ROOT / "simple", handler="app.handler"
)

#: Every function the load test and the demo run, by name.
CATALOGUE: Final[Mapping[str, LambdaFunction]] = MappingProxyType(
    {f.name: f for f in (MAIN, SIMPLE, ERROR, EXAMPLE_SIMPLE)}
)


def catalogue_function(name: str) -> LambdaFunction:
    """The catalogue's function called ``name``, or a clear error listing the others."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(
            f"no function {name!r} in the test stack; choose one of: {', '.join(CATALOGUE)}"
        ) from None
