"""The demo data a first `weibao up` loads: a living board for a first-time user.

Seven customers in six Chinese cities, with their sites at real coordinates; the five
seed agreements signed from their templates (each template's `[example]` signature), one
of them paid up after its free year (C1, C2), plus a second CRM customer in its free
year and a third whose free year ended unpaid (its visits are billable, B3); eleven
technicians with skills and home bases in those cities, one on leave; and a week of
requests in every state: in triage, resolved by phone, waiting on the customer,
escalated and waiting for a technician, assigned, accepted, on site, checked out and
completed with work time and expenses (so billing has draft invoice lines), some of them
close to their deadline.

Everything goes through the services' NATS request/reply subjects, as the console's
commands do (the runtime imports no service). Every command carries a fixed
`command_id` and every phone report a fixed key, so loading again stores nothing new: a
service answers a command id it has seen with what it stored then. Requests are opened
with `received_at` in the past week, so deadlines count from when the customer called.

The demo users (one per role, and one per technician) are written to the gateway's
users file with argon2 hashes; their passwords are printed at start."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from weibao.shared import identities
from weibao.shared.client import Client as ServicesClient
from weibao.shared.client import Unanswered
from weibao.shared.clock import CHINA
from weibao.shared.dates import add_months
from weibao.shared.errors import Rejected
from weibao.shared.geo import distance_km
from weibao.shared.service import connect
from weibao.shared.streams import SERVICES, stream_name
from weibao.shared.users import Role, User, hash_password, load_users, save_users

MARKER = "demo.loaded"  # in the data folder: the demo was loaded once, never again on its own
USERS_NOTE = "demo-users.txt"  # in the data folder: the demo users and passwords, as first written


class DemoError(RuntimeError):
    """The demo could not be loaded (a service silent, or a refusal the demo cannot skip)."""


# -- users ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: Role
    display_name: str
    technician_id: str | None = None

    @property
    def actor(self) -> str:
        """How the gateway names this user in the audit trail (`role:username`)."""
        return f"{self.role}:{self.username}"


@dataclass(frozen=True)
class Office:
    name: str
    city_code: str
    latitude: float
    longitude: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "city_code": self.city_code, "latitude": self.latitude,
                "longitude": self.longitude}


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    address: str
    latitude: float
    longitude: float

    def as_dict(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "name": self.name, "address": self.address, "latitude": self.latitude,
                "longitude": self.longitude}


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    contact: tuple[str, str]
    sites: tuple[Site, ...]


@dataclass(frozen=True)
class Agreement:
    agreement_id: str
    customer_id: str
    template_id: str
    parameters: Mapping[str, Any]
    go_live_months_ago: int  # relative to the day of loading: some free (C1), some paid (C2), one lapsed
    office: Office
    site_ids: tuple[str, ...]
    paid_years: int = 0  # years of maintenance paid after the free first year (C2)
    days_earlier: int = 0  # and this many days before that


@dataclass(frozen=True)
class Technician:
    technician_id: str
    username: str
    name: str
    skills: tuple[str, ...]
    home: tuple[float, float]
    office: Office
    shift: tuple[str, str] = ("09:00", "18:00")
    capacity: int = 5
    leave_days: int = 0  # on leave from the day of loading, for this many days


Stage = Literal["triage", "remote", "waiting", "escalated", "assigned", "accepted", "on_site", "checked_out",
                "completed"]
STAGES: tuple[Stage, ...] = ("triage", "remote", "waiting", "escalated", "assigned", "accepted", "on_site",
                             "checked_out", "completed")


@dataclass(frozen=True)
class Work:
    kind: Literal["hardware", "network", "software"]
    hours: float


@dataclass(frozen=True)
class Expense:
    kind: Literal["transport", "lodging", "meals", "travel"]
    amount: str
    nights: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Request:
    """A customer's request and how far it has come."""

    ticket_id: str
    site_id: str
    hours_ago: float  # when the customer called, before the load (at most a week)
    channel: str
    summary: str
    stage: Stage
    skill: str = "software:general"
    note: str = ""  # what triage said
    travel_hours: float = 1.0  # from assignment to the check-in, in the story the phone tells
    work: tuple[Work, ...] = ()
    expenses: tuple[Expense, ...] = ()
    resolution: str = ""


# The offices the technicians start from (C9's "local" is relative to them). WGS-84.
HEFEI = Office("合肥办事处", "3401", 31.8206, 117.2272)
SHANGHAI = Office("上海办事处", "3101", 31.2304, 121.4737)
BEIJING = Office("北京办事处", "1101", 39.9042, 116.4074)
GUANGZHOU = Office("广州办事处", "4401", 23.1291, 113.2644)
CHENGDU = Office("成都办事处", "5101", 30.5728, 104.0668)
WUHAN = Office("武汉办事处", "4201", 30.5928, 114.3055)

CUSTOMERS: tuple[Customer, ...] = (
    Customer("tianyu", "安徽天宇贸易有限公司", ("张经理", "0551-65321001"), (
        Site("tianyu-hq", "合肥总部", "安徽省合肥市蜀山区长江西路669号", 31.8590, 117.2520),
        Site("tianyu-wuhu", "芜湖仓库", "安徽省芜湖市鸠江区银湖北路", 31.3800, 118.3900),
    )),
    Customer("shenpu", "上海申浦物流有限公司", ("陆主管", "021-50801234"), (
        Site("shenpu-zj", "张江总部", "上海市浦东新区张江路88号", 31.2030, 121.5900),
        Site("shenpu-jd", "嘉定仓库", "上海市嘉定区安亭镇墨玉路", 31.2960, 121.1660),
    )),
    Customer("suihua", "广州穗华电子商行", ("何老板", "020-38801122"), (
        Site("suihua-th", "天河门店", "广东省广州市天河区体育西路103号", 23.1350, 113.3220),
        Site("suihua-py", "番禺门店", "广东省广州市番禺区市桥街", 22.9430, 113.3630),
    )),
    Customer("huanyu", "北京环宇代购科技有限公司", ("刘总", "010-64701234"), (
        Site("huanyu-wj", "望京总部", "北京市朝阳区望京街10号", 39.9960, 116.4700),
        Site("huanyu-zgc", "中关村办公室", "北京市海淀区中关村大街27号", 39.9800, 116.3160),
    )),
    Customer("chutian", "武汉市楚天中学", ("周老师", "027-88012345"), (
        Site("chutian-wc", "武昌校区", "湖北省武汉市武昌区中南路12号", 30.5390, 114.3330),
    )),
    Customer("shujin", "成都蜀锦餐饮管理有限公司", ("王店长", "028-86661234"), (
        Site("shujin-cxl", "春熙路店", "四川省成都市锦江区春熙路18号", 30.6560, 104.0800),
        Site("shujin-my", "绵阳店", "四川省绵阳市涪城区临园路", 31.4660, 104.7400),
    )),
    Customer("jiangcheng", "武汉江城制药有限公司", ("陈科长", "027-85551234"), (
        Site("jiangcheng-hk", "汉口厂区", "湖北省武汉市江汉区建设大道568号", 30.5950, 114.2700),
    )),
)

# Added after every agreement is signed: when dispatch knows this site, it has read every
# coverage message before it (a consumer applies contracts' stream in order).
LAST_SITE = ("tianyu", Site("tianyu-lab", "高新区研发中心", "安徽省合肥市蜀山区望江西路800号", 31.8270, 117.1330))

# Each template's [example] signature (services/contracts/.../templates/*.toml); a test
# checks these are still the examples.
YIZHUO_EXAMPLE: Mapping[str, Any] = {
    "fee.percent": "15", "fee.licence_price": "80000", "onsite.local_hours": 8, "onsite.out_of_town_days": 2,
    "hardware.day_rate": "800",
}

AGREEMENTS: tuple[Agreement, ...] = (
    # [1] paid maintenance after the free year (C1, C2), ending in three weeks: next year's
    # fee is due (B4); hardware days at 800 (C4)
    Agreement("tianyu-crm", "tianyu", "yizhuo-crm-maintenance", YIZHUO_EXAMPLE, 23, HEFEI,
              ("tianyu-hq", "tianyu-wuhu", "tianyu-lab"), paid_years=1, days_earlier=10),
    # [2] urgency by phase (C14)
    Agreement("shenpu-xxx", "shenpu", "xxx-software-service", {}, 4, SHANGHAI, ("shenpu-zj", "shenpu-jd")),
    # [3] by arrangement, 24-hour phone support (C16)
    Agreement("suihua-chaoren", "suihua", "chaoren-software-sale", {}, 8, GUANGZHOU, ("suihua-th", "suihua-py")),
    # [4] respond and resolve within 24 hours (C15)
    Agreement("huanyu-qss", "huanyu", "quansousuo-purchasing", {}, 3, BEIJING, ("huanyu-wj", "huanyu-zgc")),
    # [5] three guarantees, 9:00-18:00 every day (C19, C20)
    Agreement("chutian-ziguang", "chutian", "ziguang-three-guarantees", {}, 6, WUHAN, ("chutian-wc",)),
    # [1] again: in its free first year; one site out of town (C9: M days)
    Agreement("shujin-crm", "shujin", "yizhuo-crm-maintenance", YIZHUO_EXAMPLE, 5, CHENGDU,
              ("shujin-cxl", "shujin-my")),
    # [1] again: the free year ended three months ago, unpaid: visits are billable (C1, B3)
    # service outside coverage at 260 yuan per started hour (B3), written into the signature
    Agreement("jiangcheng-crm", "jiangcheng", "yizhuo-crm-maintenance",
              {**YIZHUO_EXAMPLE, "service.hourly_rate": "260"}, 15, WUHAN, ("jiangcheng-hk",)),
)

TECHNICIANS: tuple[Technician, ...] = (
    Technician("hf-wanglei", "wanglei", "王磊", ("software:general", "hardware", "network"), (31.8300, 117.2400),
               HEFEI, ("08:30", "18:00")),
    Technician("hf-zhaomin", "zhaomin", "赵敏", ("software:general",), (31.8700, 117.3000), HEFEI),
    Technician("sh-chenhao", "chenhao", "陈浩", ("software:general", "network"), (31.2400, 121.5000), SHANGHAI),
    Technician("sh-liuyang", "liuyang", "刘洋", ("hardware", "software:general"), (31.3000, 121.2500), SHANGHAI),
    Technician("bj-sunqiang", "sunqiang", "孙强", ("software:general", "network"), (39.9500, 116.4500), BEIJING,
               ("08:00", "17:30")),
    Technician("bj-zhouting", "zhouting", "周婷", ("software:general",), (39.9700, 116.3300), BEIJING),
    Technician("gz-huangjun", "huangjun", "黄俊", ("software:general", "hardware"), (23.1300, 113.3000), GUANGZHOU),
    Technician("cd-lina", "lina", "李娜", ("software:general", "network"), (30.6600, 104.0600), CHENGDU),
    Technician("cd-yangfan", "yangfan", "杨帆", ("hardware", "network", "software:general"), (30.6200, 104.0400),
               CHENGDU, ("10:00", "19:00")),
    Technician("wh-wugang", "wugang", "吴刚", ("hardware", "network", "software:general"), (30.5800, 114.3000),
               WUHAN),
    Technician("wh-xujing", "xujing", "徐静", ("software:general",), (30.5500, 114.3400), WUHAN, leave_days=3),
)

REQUESTS: tuple[Request, ...] = (
    # completed, with work time and expenses: billing's draft invoice lines (B1-B3)
    Request("SR-1001", "suihua-th", 140, "phone", "超人进销存加密狗无法识别，收银无法开单", "completed", "hardware",
            "电话排查后仍无法识别，需上门", 1.5, (Work("hardware", 2),),
            (Expense("transport", "42.00", note="出租车"), Expense("meals", "30.00")), "更换 USB 接口并重装加密狗驱动"),
    Request("SR-1002", "chutian-wc", 120, "phone", "计算机教室 3 号机开机蓝屏", "completed", "hardware",
            "远程无法连接，需上门检测", 2, (Work("hardware", 3),), (Expense("transport", "25.00"),),
            "内存条接触不良，清洁后重新插装，运行正常"),
    Request("SR-1003", "jiangcheng-hk", 100, "phone", "ERP 月结报表金额与总账不符", "completed", "software:general",
            "电话核对无果，需现场查数据", 1.5, (Work("software", 4),),
            (Expense("transport", "30.00"), Expense("meals", "45.50")), "修复月结凭证重复过账，重新生成报表"),
    Request("SR-1008", "suihua-py", 60, "phone", "门店打印机驱动丢失，小票打印乱码", "completed", "software:general",
            "", 1.5, (Work("software", 1),), (Expense("transport", "35.00"),), "重装打印驱动并设置默认纸张"),
    Request("SR-1007", "shujin-my", 40, "phone", "绵阳店收银终端与总部网络中断", "completed", "network",
            "远程无法连通门店路由器", 6, (Work("network", 5),),
            (Expense("travel", "154.00", note="成都东-绵阳 动车往返"), Expense("lodging", "268.00", nights=1),
             Expense("meals", "60.00")), "更换门店交换机端口并重配 VPN"),
    Request("SR-1005", "shenpu-zj", 30, "phone", "仓储模块升级后部分账号无法登录", "completed", "software:general",
            "远程协助未能解决", 2, (Work("software", 2),),
            (Expense("transport", "55.00"), Expense("meals", "40.00")), "修复权限表迁移脚本，恢复账号登录"),
    Request("SR-1006", "huanyu-wj", 18, "qq", "代购订单与海外仓同步失败", "completed", "network",
            "QQ 远程排查为专线故障", 1.5, (Work("network", 1.5),), (Expense("transport", "38.00"),),
            "专线网关证书更新，同步恢复"),
    Request("SR-1004", "tianyu-hq", 5, "phone", "CRM 服务器硬盘告警，需更换硬盘", "completed", "hardware",
            "电话确认 RAID 降级", 1, (Work("hardware", 3),), (Expense("transport", "28.00"),),
            "更换故障硬盘并重建 RAID"),
    # checked out, not yet closed: its work and expense are already on the draft
    Request("SR-1029", "huanyu-wj", 12, "phone", "支付接口证书过期，无法收款", "checked_out", "software:general",
            "需现场更新证书", 1.5, (Work("software", 2),), (Expense("meals", "32.00"),)),
    # resolved by phone or remotely (C13, D3)
    Request("SR-1009", "shenpu-jd", 150, "phone", "月结报表导出格式不对", "remote", note="电话指导调整导出模板"),
    Request("SR-1010", "huanyu-zgc", 100, "qq", "新员工无法登录后台", "remote", note="QQ 远程重置账号"),
    Request("SR-1011", "shujin-cxl", 70, "phone", "会员积分规则如何设置", "remote", note="电话讲解积分规则配置"),
    Request("SR-1012", "tianyu-lab", 20, "phone", "CRM 客户导入模板下载失败", "remote", note="邮件发送新模板"),
    # on site now (D5)
    Request("SR-1027", "tianyu-wuhu", 30, "phone", "芜湖仓库 CRM 客户端升级失败", "on_site", "software:general",
            "远程升级多次失败", 3),
    Request("SR-1026", "chutian-wc", 4, "phone", "计算机教室 12 台电脑无法联网", "on_site", "network",
            "电话排查为交换机故障", 1),
    Request("SR-1028", "shujin-cxl", 3, "phone", "后厨点菜宝打印故障", "on_site", "hardware", "需现场检修", 1),
    # accepted by the technician, on the way (SR-1024 cannot make its deadline: at risk, D4)
    Request("SR-1024", "shujin-my", 47, "phone", "绵阳店会员系统无法积分", "accepted", "software:general",
            "远程无法连接门店服务器", 4),
    Request("SR-1025", "shenpu-zj", 20, "email", "打印服务频繁崩溃", "accepted", "software:general",
            "日志显示服务异常"),
    # assigned, not yet accepted
    Request("SR-1023", "suihua-th", 30, "phone", "加密狗损坏需更换", "assigned", "hardware", "加密狗指示灯不亮"),
    Request("SR-1021", "tianyu-hq", 7.5, "phone", "销售漏斗报表数据错误", "assigned", "software:general",
            "远程查看后需现场核对"),
    Request("SR-1022", "huanyu-zgc", 6, "phone", "分支机构 VPN 连不上", "assigned", "network", "远程无法连接"),
    # escalated, waiting for a technician (D3, D4)
    Request("SR-1020", "jiangcheng-hk", 50, "phone", "ERP 数据库空间不足", "escalated", "software:general",
            "需现场扩容"),
    Request("SR-1019", "shenpu-jd", 10, "phone", "仓库扫码枪批量失灵", "escalated", "hardware", "电话排查无果"),
    Request("SR-1018", "tianyu-hq", 7, "phone", "CRM 与财务系统接口中断", "escalated", "software:general",
            "接口日志报错，需现场处理"),
    # waiting on the customer: the clocks pause (D1)
    Request("SR-1017", "shujin-cxl", 6, "phone", "菜品数据丢失，需恢复", "waiting", note="等待客户提供数据库备份"),
    # in triage, nobody has called back yet (C13, D3)
    Request("SR-1015", "suihua-th", 26, "email", "咨询升级到新版本的费用", "triage"),
    Request("SR-1013", "huanyu-wj", 21, "phone", "后台页面加载缓慢", "triage"),
    Request("SR-1014", "shenpu-zj", 2, "phone", "新员工账号权限配置", "triage"),
    Request("SR-1016", "chutian-wc", 0.5, "phone", "多媒体教室投影无信号", "triage", "hardware"),
)

STAFF: tuple[DemoUser, ...] = (
    DemoUser("diaodu", "diaodu123", "dispatcher", "调度员 李静"),
    DemoUser("caiwu", "caiwu123", "billing", "财务 孙丽"),
    DemoUser("shenji", "shenji123", "auditor", "审计 郑华"),
    DemoUser("admin", "admin123", "admin", "系统管理员"),
)
DEMO_USERS: tuple[DemoUser, ...] = (
    *STAFF,
    *(DemoUser(t.username, f"{t.username}123", "technician", f"工程师 {t.name}", t.technician_id)
      for t in TECHNICIANS),
)
_DISPATCHER = STAFF[0].actor
_ADMIN = STAFF[3].actor
_TECH_ACTOR = {u.technician_id: u.actor for u in DEMO_USERS if u.technician_id}


def write_demo_users(path: Path) -> list[DemoUser]:
    """Add the demo users to the users file (argon2 hashes), keeping anyone already in it;
    returns the demo users written (a name already taken is left alone)."""
    users = load_users(path)
    written = [u for u in DEMO_USERS if u.username not in users]
    for u in written:
        users[u.username] = User(u.username, u.role, hash_password(u.password), u.display_name, u.technician_id)
    save_users(path, users)
    return written


def users_table(users: Iterable[DemoUser]) -> list[str]:
    return [f"  {u.username:<10} {u.password:<13} {u.role:<11} {u.display_name}" for u in users]


def users_table_header() -> list[str]:
    return [f"  {'user':<10} {'password':<13} {'role':<11} name"]


# -- the load ---------------------------------------------------------------------------


@dataclass
class DemoReport:
    customers: int = 0
    sites: int = 0
    agreements: int = 0
    payments: int = 0
    technicians: int = 0
    tickets: dict[str, str] = field(default_factory=dict)  # ticket id -> status, as dispatch has it
    at_risk: list[str] = field(default_factory=list)  # assigned knowing the deadline cannot be met (D4)
    skipped: list[str] = field(default_factory=list)  # requests a refusal stopped, with the reason
    received_at: str = "not used"  # "honoured", "ignored" or "refused" by dispatch
    new_events: dict[str, int] = field(default_factory=dict)  # events this load stored, per service
    invoices: dict[str, int] = field(default_factory=dict)  # draft invoice id -> lines
    commands: int = 0
    seconds: float = 0.0

    @property
    def by_status(self) -> dict[str, int]:
        return dict(Counter(self.tickets.values()))

    @property
    def invoice_lines(self) -> int:
        return sum(self.invoices.values())

    def lines(self) -> list[str]:
        states = ", ".join(f"{n} {status}" for status, n in sorted(self.by_status.items()))
        stored = ", ".join(f"{service} {n}" for service, n in self.new_events.items())
        text = [
            f"Demo data: {self.customers} customers with {self.sites} sites, {self.agreements} agreements "
            f"({self.payments} paid up), {self.technicians} technicians",
            f"  {len(self.tickets)} requests over the past week: {states}",
            f"  {len(self.at_risk)} assigned at risk; {self.invoice_lines} draft invoice lines "
            f"on {len(self.invoices)} invoices",
            f"  {self.commands} commands in {self.seconds:.1f}s; new events: {stored or 'none'}"
            f"; received_at {self.received_at}",
        ]
        if self.skipped:
            text.append(f"  skipped {len(self.skipped)}: " + "; ".join(self.skipped))
        return text


@dataclass
class _Client:
    nc: NATS
    report: DemoReport
    base: dict[str, int]
    timeout: float = 15.0
    seen: set[tuple[str, int]] = field(default_factory=set)
    # The kit's client, signed with the CLI's key (WEIBAO_KEYS): the services believe the
    # demo's actors only because the CLI vouches for them.
    services: ServicesClient | None = None

    def __post_init__(self) -> None:
        if self.services is None:
            self.services = ServicesClient.from_env(self.nc, "cli", timeout=self.timeout)

    async def ask(self, subject: str, body: Mapping[str, Any], actor: str = _ADMIN,
                  attempts: int = 4) -> Mapping[str, Any]:
        """One request; retried on silence (commands carry their id, so a retry is harmless)."""
        assert self.services is not None
        for attempt in range(attempts):
            try:
                # Signed afresh on each attempt: a retry is issued now, not when the first left.
                return await self.services.answer(f"weibao.{subject}", body, actor=actor,
                                                  correlation_id=f"demo:{body.get('command_id') or subject}")
            except Unanswered as error:
                if attempt == attempts - 1:
                    raise DemoError(f"weibao.{subject} did not answer: {error}") from error
                await asyncio.sleep(0.5 * 2**attempt)
        raise DemoError(f"weibao.{subject}: no attempt made")

    async def do(self, subject: str, command_id: str, body: Mapping[str, Any],
                 actor: str = _ADMIN) -> list[Mapping[str, Any]]:
        """A command: its events, or Rejected with the service's refusal."""
        answer = await self.ask(subject, {**body, "command_id": command_id}, actor)
        self.report.commands += 1
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise Rejected(str(error.get("code", "")), str(error.get("field", "")), str(error.get("message", "")))
        events: list[Mapping[str, Any]] = list((answer.get("result") or {}).get("events") or [])
        service = subject.split(".", 1)[0]
        for event in events:
            position = int(event.get("position", 0))
            if position > self.base.get(service, 0) and (service, position) not in self.seen:
                self.seen.add((service, position))
                self.report.new_events[service] = self.report.new_events.get(service, 0) + 1
        return events


async def health(nc: NATS, service: str, timeout: float = 2.0) -> dict[str, Any]:
    reply = await nc.request(f"weibao.{service}.health", b"", timeout=timeout)
    found: dict[str, Any] = json.loads(reply.data)
    return found


async def wait_for_services(nc: NATS, services: Sequence[str] = SERVICES, timeout: float = 60.0) -> dict[str, int]:
    """Until every service answers its health request; their log positions."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return {s: int((await health(nc, s))["log_position"]) for s in services}
        except (NatsTimeout, NoRespondersError, KeyError, ValueError) as error:
            if time.monotonic() > deadline:
                raise DemoError(f"the services did not answer within {timeout:.0f}s: {error!r}") from error
            await asyncio.sleep(0.3)


async def settled(nc: NATS, services: Sequence[str] = SERVICES) -> bool:
    """Whether every service has published all it stored and every durable consumer of
    their streams has applied (acked) all of it: read models and policies caught up."""
    js = nc.jetstream()
    for service in services:
        state = await health(nc, service)
        if int(state.get("relayed_position", -1)) < int(state["log_position"]):
            return False
        for consumer in await js.consumers_info(stream_name(service)):
            if consumer.config.durable_name and (consumer.num_pending or consumer.num_ack_pending):
                return False
    return True


async def wait_settled(nc: NATS, services: Sequence[str] = SERVICES, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await settled(nc, services):
                return True
        except NatsError:  # a service or stream not there yet: wait on
            pass
        await asyncio.sleep(0.2)
    return False


def iso(moment: datetime) -> str:
    """A time as the console and the phone send it: Beijing time, to the second."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def _site_of(site_id: str) -> Site:
    return next(s for s in (*(s for c in CUSTOMERS for s in c.sites), LAST_SITE[1]) if s.site_id == site_id)


def _customer_of(site_id: str) -> str:
    if site_id == LAST_SITE[1].site_id:
        return LAST_SITE[0]
    return next(c.customer_id for c in CUSTOMERS if any(s.site_id == site_id for s in c.sites))


async def load_demo(nc: NATS, *, now: datetime, timeout: float = 60.0) -> DemoReport:
    """Load the demo into the running services over `nc`; `now` is the services' clock
    (tickets are spread over the week before it). Loading again stores nothing new."""
    started = time.monotonic()
    report = DemoReport()
    base = await wait_for_services(nc, timeout=timeout)
    client = _Client(nc, report, base)
    today = now.astimezone(CHINA).date()

    await _contracts(client, today)
    await _technicians(client, today)
    await _wait_for_dispatch(client, timeout)
    for request in sorted(REQUESTS, key=lambda r: -r.hours_ago):
        await _request(client, request, now)

    await wait_settled(nc, timeout=timeout)
    await _collect(client, now)
    report.seconds = time.monotonic() - started
    return report


async def _contracts(client: _Client, today: date) -> None:
    report = client.report
    for customer in CUSTOMERS:
        await client.do("contracts.customer.register", f"demo:customer:{customer.customer_id}", {
            "customer_id": customer.customer_id, "name": customer.name,
            "contacts": [{"name": customer.contact[0], "phone": customer.contact[1]}],
            "sites": [s.as_dict() for s in customer.sites]})
        report.customers += 1
        report.sites += len(customer.sites)
    for agreement in AGREEMENTS:
        go_live = add_months(today, -agreement.go_live_months_ago) - timedelta(days=agreement.days_earlier)
        await client.do("contracts.sign", f"demo:sign:{agreement.agreement_id}", {
            "agreement_id": agreement.agreement_id, "customer_id": agreement.customer_id,
            "template_id": agreement.template_id, "parameters": dict(agreement.parameters),
            "go_live": go_live.isoformat(), "signed_on": (go_live - timedelta(days=21)).isoformat(),
            "office": agreement.office.as_dict(), "site_ids": list(agreement.site_ids)})
        report.agreements += 1
        for year in range(1, agreement.paid_years + 1):
            # rule C2: a year's fee, percent of the licence price, paid before the period starts
            period_from = add_months(go_live, 12 * year)
            fee = Decimal(str(agreement.parameters["fee.percent"])) * Decimal(
                str(agreement.parameters["fee.licence_price"])) / 100
            await client.do("contracts.pay", f"demo:pay:{agreement.agreement_id}:{year}", {
                "agreement_id": agreement.agreement_id, "payment_id": f"{agreement.agreement_id}-fee-{year}",
                "amount": f"{fee:.2f}", "period_from": period_from.isoformat(),
                "period_to": (add_months(period_from, 12) - timedelta(days=1)).isoformat(),
                "paid_on": (period_from - timedelta(days=12)).isoformat()})
            report.payments += 1
        # What the daily assessment would find within the hour, now: fees due (B4), a lapse
        # (C1). The domain raises each once, so a second load's assessment stores nothing.
        await client.do("contracts.assess", f"demo:assess:{agreement.agreement_id}",
                        {"agreement_id": agreement.agreement_id, "today": today.isoformat()})
    customer_id, site = LAST_SITE
    await client.do("contracts.customer.add_site", f"demo:site:{site.site_id}",
                    {"customer_id": customer_id, **site.as_dict()})
    report.sites += 1


async def _technicians(client: _Client, today: date) -> None:
    for t in TECHNICIANS:
        await client.do("dispatch.technician.register", f"demo:technician:{t.technician_id}", {
            "technician_id": t.technician_id, "name": t.name, "skills": list(t.skills),
            "home": {"latitude": t.home[0], "longitude": t.home[1]}, "office_city_code": t.office.city_code,
            "shift": {"starts": t.shift[0], "ends": t.shift[1]}, "capacity_per_day": t.capacity}, _DISPATCHER)
        client.report.technicians += 1
        if t.leave_days:
            # The command id names the loading day's leave, once: a later load adds no second leave.
            await client.do("dispatch.technician.time_off", f"demo:leave:{t.technician_id}", {
                "technician_id": t.technician_id, "first_day": today.isoformat(),
                "last_day": (today + timedelta(days=t.leave_days - 1)).isoformat(), "reason": "年假"},
                _DISPATCHER)


async def _wait_for_dispatch(client: _Client, timeout: float) -> None:
    """Coverage reaches dispatch from contracts' stream, technicians from its own: wait
    until the last site added is known there (so is every agreement before it) and the
    board lists every technician."""
    await wait_settled(client.nc, timeout=timeout)
    probe = {"ticket_id": "", "site_id": LAST_SITE[1].site_id, "summary": ""}  # refused whatever: stores nothing
    wanted = {t.technician_id for t in TECHNICIANS}
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.ask("dispatch.ticket.open", probe, _DISPATCHER)
        site_known = not answer.get("ok") and (answer.get("error") or {}).get("field") != "site_id"
        board = await client.ask("dispatch.technicians", {}, _DISPATCHER)
        listed = {row.get("technician_id") for row in board.get("result") or []}
        if site_known and wanted <= listed:
            return
        if time.monotonic() > deadline:
            raise DemoError(f"dispatch has not caught up with contracts within {timeout:.0f}s "
                            f"(site known: {site_known}, technicians: {len(listed & wanted)}/{len(wanted)})")
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class _Point:
    latitude: float
    longitude: float


def _nearest(request: Request) -> Technician:
    """Who a dispatcher sends when the rule finds nobody on shift: the nearest with the skill."""
    site = _Point(*_coordinates(request.site_id))
    able = [t for t in TECHNICIANS if request.skill in t.skills and not t.leave_days]
    return min(able, key=lambda t: (distance_km(_Point(*t.home), site), t.technician_id))


def _coordinates(site_id: str) -> tuple[float, float]:
    site = _site_of(site_id)
    return site.latitude, site.longitude


async def _request(client: _Client, request: Request, now: datetime) -> None:
    """Open one request and take it as far as its stage; a refusal skips the rest of it."""
    try:
        await _advance(client, request, now)
    except Rejected as error:
        client.report.skipped.append(f"{request.ticket_id}: {error}")


async def _advance(client: _Client, request: Request, now: datetime) -> None:
    tid = request.ticket_id
    stage = STAGES.index(request.stage)
    received = (now - timedelta(hours=request.hours_ago)).replace(second=0, microsecond=0)
    await _open(client, request, received)
    if request.stage == "triage":
        return
    if request.stage == "remote":
        await client.do("dispatch.ticket.triage", f"demo:{tid}:triage",
                        {"ticket_id": tid, "outcome": "remote", "note": request.note}, _DISPATCHER)
        return
    if request.stage == "waiting":
        await client.do("dispatch.ticket.wait", f"demo:{tid}:wait", {"ticket_id": tid, "reason": request.note},
                        _DISPATCHER)
        return
    await client.do("dispatch.ticket.triage", f"demo:{tid}:triage",
                    {"ticket_id": tid, "outcome": "escalate", "note": request.note or "电话无法解决，需上门"},
                    _DISPATCHER)
    if stage <= STAGES.index("escalated"):
        return
    technician = await _assign(client, request)
    if stage <= STAGES.index("assigned"):
        return
    actor = _TECH_ACTOR.get(technician, f"technician:{technician}")
    await client.do("dispatch.ticket.accept", f"demo:{tid}:accept", {"ticket_id": tid, "technician_id": technician},
                    actor)
    if stage <= STAGES.index("accepted"):
        return

    # The phone's story: on site `travel_hours` after the call, working, then uploading.
    # Device times never run ahead of the server's clock (D5).
    latest = now - timedelta(minutes=2)
    arrived = min(received + timedelta(hours=request.travel_hours), latest)
    site = _site_of(request.site_id)
    here = {"latitude": round(site.latitude + 0.0002, 6), "longitude": round(site.longitude - 0.0002, 6)}

    async def report(what: str, n: int, at: datetime, **fields: Any) -> None:
        await client.do(f"dispatch.ticket.{what}", f"demo:{tid}:{what}:{n}", {
            "ticket_id": tid, "technician_id": technician, "key": f"{tid}-{what}-{n}",
            "device_time": iso(min(at, latest)), **fields}, actor)

    await report("check_in", 1, arrived, position=here, accuracy_m=12)
    if stage <= STAGES.index("on_site"):
        return
    at = arrived + timedelta(minutes=10)
    for n, work in enumerate(request.work, 1):
        ended = min(at + timedelta(hours=work.hours), latest)
        begun = ended - timedelta(hours=work.hours)
        await report("work", n, ended, kind=work.kind, started=iso(begun), ended=iso(ended))
        at = ended
    for n, expense in enumerate(request.expenses, 1):
        fields: dict[str, Any] = {"kind": expense.kind, "amount": expense.amount,
                                  "receipt_no": f"FP-{tid.replace('-', '')}-{n}",
                                  "receipt_date": arrived.astimezone(CHINA).date().isoformat(), "note": expense.note}
        if expense.nights is not None:
            fields["nights"] = expense.nights
        await report("expense", n, at, **fields)
    await report("check_out", 1, at + timedelta(minutes=5), position=here, accuracy_m=15)
    if stage <= STAGES.index("checked_out"):
        return
    await client.do("dispatch.ticket.complete", f"demo:{tid}:complete",
                    {"ticket_id": tid, "technician_id": technician, "resolution": request.resolution}, actor)


async def _open(client: _Client, request: Request, received: datetime) -> None:
    body = {"ticket_id": request.ticket_id, "site_id": request.site_id, "channel": request.channel,
            "summary": request.summary, "skill": request.skill}
    command_id = f"demo:{request.ticket_id}:open"
    try:
        events = await client.do("dispatch.ticket.open", command_id, {**body, "received_at": received.isoformat()},
                                 _DISPATCHER)
    except Rejected as error:
        if error.field != "received_at":
            raise
        # A dispatch without backdating (or a clock that disagrees): opened as of now.
        client.report.received_at = "refused"
        events = await client.do("dispatch.ticket.open", command_id, body, _DISPATCHER)
    else:
        opened = next((e for e in events if str(e.get("type", "")).endswith("TicketOpened")), None)
        when = (opened or {}).get("data", {}).get("opened_at")
        honoured = when is not None and datetime.fromisoformat(when) == received
        if client.report.received_at != "refused":
            client.report.received_at = "honoured" if honoured else "ignored"


async def _assign(client: _Client, request: Request, command_id: str | None = None) -> str:
    """Rule D4 picks; when it finds nobody (everyone's shift is over: a load in the
    evening), the dispatcher sends the nearest technician and says why."""
    tid = request.ticket_id
    command_id = command_id or f"demo:{tid}:assign"
    try:
        events = await client.do("dispatch.ticket.assign", command_id, {"ticket_id": tid}, _DISPATCHER)
    except Rejected as error:
        if error.code != "nobody_available":
            raise
        chosen = _nearest(request)
        events = await client.do("dispatch.ticket.assign", command_id, {
            "ticket_id": tid, "technician_id": chosen.technician_id,
            "reason": "规则无人在班，调度员安排最近的工程师加班处理"}, _DISPATCHER)
    assigned = next(e for e in events if str(e.get("type", "")).endswith("VisitAssigned"))
    data = assigned.get("data") or {}
    if data.get("at_risk") and tid not in client.report.at_risk:
        client.report.at_risk.append(tid)
    return str(data["technician_id"])


async def _collect(client: _Client, now: datetime) -> None:
    """What the board and billing now hold, for the report (a silent query is left out:
    the data is in either way)."""
    months: set[str] = set()

    async def query(subject: str, body: Mapping[str, Any], actor: str) -> Mapping[str, Any]:
        try:
            answer = await client.ask(subject, body, actor, attempts=1)
        except DemoError:
            return {}
        return (answer.get("result") or {}) if answer.get("ok") else {}

    for request in REQUESTS:
        ticket = await query("dispatch.ticket", {"ticket_id": request.ticket_id}, _DISPATCHER)
        if ticket:
            client.report.tickets[request.ticket_id] = str(ticket.get("status", ""))
        if request.work or request.expenses:
            received = now - timedelta(hours=request.hours_ago)
            for moment in (received, received + timedelta(hours=request.travel_hours), now):
                months.add(f"{_customer_of(request.site_id)}-{moment.astimezone(CHINA):%Y-%m}")
    for invoice_id in sorted(months):
        if lines := (await query("billing.invoice", {"invoice_id": invoice_id}, STAFF[1].actor)).get("lines"):
            client.report.invoices[invoice_id] = len(lines)


# -- shared with the demo pulse (runtime/pulse.py): the same client, actors and places -----

Client = _Client
DISPATCHER = _DISPATCHER


def technician_actor(technician_id: str) -> str:
    """How a technician's own phone reports are signed (`technician:<username>`)."""
    return _TECH_ACTOR.get(technician_id, f"technician:{technician_id}")


def site_of(site_id: str) -> Site:
    return _site_of(site_id)


async def assign(client: _Client, request: Request, command_id: str) -> str:
    """D4 picks (or the dispatcher sends the nearest, saying why); the technician assigned."""
    return await _assign(client, request, command_id)


# -- the runtime's side: users file, marker, one call --------------------------------------


def users_path(data: Path) -> Path:
    """The gateway's users file: WEIBAO_USERS when set, else beside the data."""
    configured = os.environ.get("WEIBAO_USERS")
    return Path(configured) if configured else data / "users.json"


def ensure_demo_users(data: Path) -> list[DemoUser] | None:
    """Write the demo users when there is no users file yet (and note their passwords
    beside the data, readable by the owner only); None when a users file exists."""
    path = users_path(data)
    if path.exists():
        return None
    written = write_demo_users(path)
    note = data / USERS_NOTE
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text("\n".join(users_table(written)) + "\n", "utf-8")
    note.chmod(0o600)
    return written


def demo_users_note(data: Path) -> list[str] | None:
    note = data / USERS_NOTE
    return note.read_text("utf-8").splitlines() if note.exists() else None


async def load_and_mark(nats_url: str, data: Path, *, now: datetime, timeout: float = 120.0) -> DemoReport:
    """Connect, load, and leave the marker that says the demo is in."""
    # As the CLI identity (WEIBAO_NATS_SEED); a first connect that fails, fails (no retry forever).
    nc = await connect(nats_url, "weibao-demo", seed=identities.seed_for("cli"), max_reconnect_attempts=60,
                       reconnect_time_wait=2)
    try:
        report = await load_demo(nc, now=now, timeout=timeout)
    finally:
        await nc.drain()
    # Written even when some requests were skipped (the report says which): a later start
    # would only be refused the same way.
    (data / MARKER).write_text("\n".join(report.lines()) + "\n", "utf-8")
    return report
