"""ConflictError and NotFoundError, as the async client raises them."""

from __future__ import annotations

import asyncio

from elluminate import alocal_client
from elluminate.exceptions import APIError, ConflictError, NotFoundError


async def main() -> None:
    async with alocal_client() as client:
        await client.create_prompt_template(name="Existing", template="Hello {{name}}")
        try:
            template = await client.create_prompt_template(
                name="Existing", template="Hello {{name}}"
            )
        except ConflictError as exc:
            print(f"conflict: {exc}")
            template = await client.get_prompt_template(name="Existing")
        print(f"using {template.name} v{template.version}")

        try:
            await client.get_experiment(name="NotExistent")
        except NotFoundError as exc:
            print(f"not found: {exc}")

        try:
            await client.create_prompt_template(name="Broken", template="Hello {{name")
        except APIError as exc:
            print(f"rejected ({exc.status_code}): {exc.message}")


if __name__ == "__main__":
    asyncio.run(main())
