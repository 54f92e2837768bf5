"""Issue 16, names of people, not ids: GET /api/v1/names answers the display name of each
actor an office screen shows (`dispatcher:li` made an assignment), and nothing else."""

from __future__ import annotations

from tests.gateway.conftest import Gateway


async def test_the_office_gets_display_names_of_actors_and_nothing_for_strangers(gateway: Gateway) -> None:
    desk = await gateway.as_user("li")
    answer = await desk.get("/api/v1/names", params=[("actor", "dispatcher:li"), ("actor", "technician:near"),
                                                     ("actor", "qian"), ("actor", "billing:li"),
                                                     ("actor", "system"), ("actor", "dispatcher:nobody")])
    assert answer.status_code == 200, answer.text
    # conftest's users are named by their user name, title-cased; a role that is not theirs
    # names nobody, nor does an actor without a user
    assert answer.json() == {"names": {"dispatcher:li": "Li", "technician:near": "Near", "qian": "Qian"}}
    auditor = await gateway.as_user("shen")
    assert (await auditor.get("/api/v1/names", params={"actor": "dispatcher:li"})).json()["names"] == {
        "dispatcher:li": "Li"}


async def test_names_are_for_the_office_not_the_field_nor_strangers(gateway: Gateway) -> None:
    field = await gateway.as_user("near")
    assert (await field.get("/api/v1/names", params={"actor": "dispatcher:li"})).status_code == 403
    assert (await gateway.http.get("/api/v1/names", params={"actor": "dispatcher:li"})).status_code == 401
    desk = await gateway.as_user("li")
    too_many = [("actor", f"dispatcher:u{i}") for i in range(51)]
    assert (await desk.get("/api/v1/names", params=too_many)).status_code in (400, 422)
