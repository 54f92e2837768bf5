"""What the browser tests find when they start: users of every role, two customers with
their agreements, three technicians; and the gateway's API as a plain HTTP client for
what a test sets up outside the browser."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from weibao.shared.clock import CHINA
from weibao.shared.users import User, hash_password, save_users

PASSWORD = "browser-secret-1"
HEFEI_OFFICE = {"name": "合肥办事处", "city_code": "3401", "latitude": 31.8206, "longitude": 117.2272}
ZHENGZHOU_OFFICE = {"name": "郑州办事处", "city_code": "4101", "latitude": 34.7466, "longitude": 113.6254}
SITE = {"latitude": 31.8650, "longitude": 117.2830}  # 蜀山/庐阳, a few km from the Hefei office
SITE_2 = {"latitude": 34.7580, "longitude": 113.6650}  # 郑州 金水区


def write_users(path: Path) -> None:
    hashed = hash_password(PASSWORD)
    save_users(path, {
        "li": User("li", "dispatcher", hashed, "李调度"),
        "wang": User("wang", "technician", hashed, "王强", technician_id="near"),
        "zhao": User("zhao", "billing", hashed, "赵会计"),
        "sun": User("sun", "auditor", hashed, "孙审计"),
        "root": User("root", "admin", hashed, "系统管理员"),  # runs an assessment now (C1 lapse), as ops would
    })


class Api:
    """The gateway's API as one signed-in user; a refusal fails the test with its error."""

    def __init__(self, base_url: str, username: str, password: str = PASSWORD) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/api/v1", timeout=30)
        token = self.http.post("/session", json={"username": username, "password": password})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None, *, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        response = self.http.post(path, json=body if body is not None else {}, headers=headers)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        return response.json()

    def attempt(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, json=body if body is not None else {},
                              headers={"Idempotency-Key": uuid.uuid4().hex})


def until(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll `check` until it answers something truthy (read models trail the events)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s: {check}")
        time.sleep(every)


def seed(base_url: str) -> None:
    """Customers, agreements and technicians, and wait until dispatch has heard of them."""
    clerk, desk = Api(base_url, "zhao"), Api(base_url, "li")
    went_live = (datetime.now(CHINA).date() - timedelta(days=60)).isoformat()  # in the free first year (C1)
    clerk.post("/customers", {"customer_id": "c-1", "name": "天宇贸易", "contacts": [
        {"name": "周经理", "phone": "0551-6288 1234", "role": "信息部"}],
        "sites": [{"site_id": "s-1", "name": "合肥总部", "address": "安徽省合肥市庐阳区", **SITE}]})
    clerk.post("/customers", {"customer_id": "c-2", "name": "中原商贸", "sites": [
        {"site_id": "s-2", "name": "郑州门店", "address": "河南省郑州市金水区", **SITE_2}]})
    clerk.post("/agreements", {
        "agreement_id": "a-1", "customer_id": "c-1", "template_id": "yizhuo-crm-maintenance",
        "parameters": {"fee.percent": "10", "fee.licence_price": "120000", "onsite.local_hours": 4,
                       "onsite.out_of_town_days": 2, "hardware.day_rate": "800"},
        "go_live": went_live, "office": HEFEI_OFFICE, "site_ids": ["s-1"]})
    clerk.post("/agreements", {
        "agreement_id": "a-2", "customer_id": "c-2", "template_id": "quansousuo-purchasing", "parameters": {},
        "go_live": went_live, "office": ZHENGZHOU_OFFICE, "site_ids": ["s-2"]})
    crew = (("near", "王强", (31.83, 117.24), ["software:general", "hardware"]),
            ("far", "刘洋", (34.75, 113.62), ["software:general", "hardware"]),
            ("east", "陈静", (32.06, 118.80), ["network", "software:general"]))
    for technician_id, name, (latitude, longitude), skills in crew:
        desk.post("/technicians", {"technician_id": technician_id, "name": name, "skills": skills,
                                   "home": {"latitude": latitude, "longitude": longitude}, "capacity_per_day": 20,
                                   "shift": {"starts": "00:00", "ends": "23:59:59"}})  # eligible at any hour (D4)

    probes = iter(range(1000))

    def covered(site_id: str, agreement_id: str) -> bool:
        probe = f"probe-{next(probes)}"
        answer = desk.attempt("/tickets", {"ticket_id": probe, "site_id": site_id, "summary": "probe"})
        if answer.status_code != 201:
            return False
        desk.post(f"/tickets/{probe}/triage", {"outcome": "remote", "note": "probe"})  # closed: off the board
        return bool(answer.json()["events"][0]["data"]["coverage"]["agreement_id"] == agreement_id)

    until(lambda: covered("s-1", "a-1") and covered("s-2", "a-2"))
    until(lambda: len(desk.get("/technicians")) == len(crew))
    until(lambda: desk.get("/customers")["total"] == 2)


def open_request(desk: Api, ticket_id: str, summary: str, *, site_id: str = "s-1", skill: str = "software:general",
                 escalate: bool = False, technician_id: str | None = None) -> None:
    """A request as the phone call makes it, optionally escalated and assigned (D3, D4)."""
    desk.post("/tickets", {"ticket_id": ticket_id, "site_id": site_id, "summary": summary, "channel": "phone",
                           "skill": skill})
    if escalate or technician_id:
        desk.post(f"/tickets/{ticket_id}/triage", {"outcome": "escalate", "note": "电话无法解决"})
    if technician_id:
        desk.post(f"/tickets/{ticket_id}/assignment", {"technician_id": technician_id, "reason": "熟悉该客户"})
