from pydantic import BaseModel

from backend.broker import broker
from backend.tasks import registry


class EchoParameters(BaseModel):
    text: str


async def test_a_type_defined_anywhere_is_registered_for_api_and_broker() -> None:
    @registry.task_type("test.echo", description="Echo text back.", parameters=EchoParameters)
    async def echo(params: EchoParameters) -> str:
        return params.text

    registered = registry.get("test.echo")
    assert registered is not None
    assert registered.description == "Echo text back."
    assert registered.parameters_schema()["required"] == ["text"]
    assert broker.find_task("test.echo") is not None
    assert "test.echo" in [t.name for t in registry.all_types()]


def test_shipped_types_are_loaded() -> None:
    from backend.tasks import load_all

    load_all()
    assert registry.get("demo.sleep") is not None
