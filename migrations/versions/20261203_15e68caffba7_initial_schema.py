"""Initial schema: every table of the platform, and the districts of Chongqing.

Creates, in dependency order:

- places: districts (with its 41 reference rows), organisations;
- catalogue: title_series, plans, courses, chapters, plan_courses;
- accounts: trainees, wechat_bindings;
- money: orders, order_items, refunds, payment_notifications;
- study: enrollments, chapter_progress, course_completions, study_sessions, study_beats;
- certificates, invoices.

Every MySQL/MariaDB table is InnoDB, utf8mb4, utf8mb4_unicode_ci; timestamps are naive UTC
DATETIME(6). Constraint and index names follow the naming convention of
wx_app/extensions.py, spelled out here in full. Every foreign-key column is the first column
of some index, so MariaDB adds no implicit index and both databases hold the same indexes.

The downgrade drops the tables in reverse order; dropping a table drops its indexes, which
MariaDB refuses to drop one by one while a foreign key still needs them.

This script must not import application code: the value lists of the CHECK constraints and
the district rows are frozen copies as of this revision. See docs/schema.md.

Revision ID: 15e68caffba7
Revises:
Create Date: 2026-12-03 15:53:06.142846
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "15e68caffba7"
down_revision = None
branch_labels = None
depends_on = None

TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

# Naive UTC with microseconds.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# AES-256-GCM: 12-byte nonce, ciphertext, 16-byte tag.
CIPHERTEXT = sa.LargeBinary().with_variant(mysql.VARBINARY(255), "mysql", "mariadb")
# HMAC-SHA256, hex.
LOOKUP_HASH = sa.CHAR(64)
# study_beats grows fastest; SQLite only auto-increments an INTEGER primary key.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Frozen value lists of the CHECK constraints.
DISTRICT_KINDS = ("district", "county", "autonomous_county", "functional_area")
PLAN_CATEGORIES = ("public", "professional")
PLAN_STATUSES = ("open", "not_open")
GENDERS = ("M", "F")
TRAINEE_STATUSES = ("active", "disabled")
TRAINEE_SOURCES = ("register", "roster", "staff")
ID_KINDS = ("resident", "hmt_permit", "foreign_permanent")
ORDER_KINDS = ("individual", "group")
ORDER_STATES = ("pending", "paid", "closed", "partially_refunded", "refunded")
INVOICE_CHOICES = ("now", "later")
ITEM_STATES = ("pending", "enrolled", "cancelled", "refunding", "refunded")
REFUND_STATES = ("processing", "success", "closed", "abnormal")
NOTIFICATION_KINDS = ("payment", "refund")
SESSION_END_REASONS = ("left", "paused", "completed", "taken_over", "expired")
CERTIFICATE_STATES = ("valid", "revoked", "superseded")
INVOICE_STATES = ("requested", "issuing", "issued", "failed", "reversed")
TITLE_KINDS = ("personal", "company")

# The districts and counties of Chongqing as of this revision: (code, name, kind), in the
# order the municipality lists them. Rows get ids 1–41 in this order, on every database.
DISTRICTS = (
    ("500101", "万州区", "district"),
    ("500102", "涪陵区", "district"),
    ("500103", "渝中区", "district"),
    ("500104", "大渡口区", "district"),
    ("500105", "江北区", "district"),
    ("500106", "沙坪坝区", "district"),
    ("500107", "九龙坡区", "district"),
    ("500108", "南岸区", "district"),
    ("500109", "北碚区", "district"),
    ("500110", "綦江区", "district"),
    ("500111", "大足区", "district"),
    ("500112", "渝北区", "district"),
    ("500113", "巴南区", "district"),
    ("500114", "黔江区", "district"),
    ("500115", "长寿区", "district"),
    ("500116", "江津区", "district"),
    ("500117", "合川区", "district"),
    ("500118", "永川区", "district"),
    ("500119", "南川区", "district"),
    ("500120", "璧山区", "district"),
    ("500151", "铜梁区", "district"),
    ("500152", "潼南区", "district"),
    ("500153", "荣昌区", "district"),
    ("500154", "开州区", "district"),
    ("500155", "梁平区", "district"),
    ("500156", "武隆区", "district"),
    ("500229", "城口县", "county"),
    ("500230", "丰都县", "county"),
    ("500231", "垫江县", "county"),
    ("500233", "忠县", "county"),
    ("500235", "云阳县", "county"),
    ("500236", "奉节县", "county"),
    ("500237", "巫山县", "county"),
    ("500238", "巫溪县", "county"),
    ("500240", "石柱土家族自治县", "autonomous_county"),
    ("500241", "秀山土家族苗族自治县", "autonomous_county"),
    ("500242", "酉阳土家族苗族自治县", "autonomous_county"),
    ("500243", "彭水苗族土家族自治县", "autonomous_county"),
    ("LJXQ", "两江新区", "functional_area"),
    ("GXQ", "西部科学城重庆高新区", "functional_area"),
    ("WSJK", "万盛经开区", "functional_area"),
)

# Children before parents: the downgrade drops in this order.
TABLES_IN_DROP_ORDER = (
    "invoices",
    "certificates",
    "study_beats",
    "study_sessions",
    "course_completions",
    "chapter_progress",
    "enrollments",
    "payment_notifications",
    "refunds",
    "order_items",
    "orders",
    "wechat_bindings",
    "trainees",
    "plan_courses",
    "chapters",
    "courses",
    "plans",
    "title_series",
    "organisations",
    "districts",
)


def one_of(name, column, values):
    quoted = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=op.f(name))


def check(name, condition):
    return sa.CheckConstraint(condition, name=op.f(name))


def pk(table, *columns):
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def unique(name, *columns):
    return sa.UniqueConstraint(*columns, name=op.f(name))


def fk(name, column, target, ondelete=None):
    return sa.ForeignKeyConstraint([column], [target], name=op.f(name), ondelete=ondelete)


def index(name, table, *columns):
    op.create_index(op.f(name), table, list(columns), unique=False)


def upgrade():
    create_places()
    create_catalogue()
    create_accounts()
    create_money()
    create_study()
    create_certificates()
    create_invoices()


def downgrade():
    for table in TABLES_IN_DROP_ORDER:
        op.drop_table(table)


def create_places():
    districts = op.create_table(
        "districts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        pk("districts", "id"),
        unique("uq_districts_code", "code"),
        unique("uq_districts_name", "name"),
        one_of("ck_districts_kind", "kind", DISTRICT_KINDS),
        **TABLE_OPTIONS,
    )
    op.bulk_insert(districts, [
        {"id": position, "code": code, "name": name, "kind": kind, "sort_order": position}
        for position, (code, name, kind) in enumerate(DISTRICTS, start=1)
    ])

    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("contact_name", sa.String(50), nullable=True),
        sa.Column("contact_phone_enc", CIPHERTEXT, nullable=True),
        sa.Column("contact_phone_masked", sa.String(20), nullable=True),
        sa.Column("qr_scene", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        pk("organisations", "id"),
        unique("uq_organisations_name", "name"),
        unique("uq_organisations_qr_scene", "qr_scene"),
        fk("fk_organisations_district_id_districts", "district_id", "districts.id"),
        **TABLE_OPTIONS,
    )
    index("ix_organisations_district_id", "organisations", "district_id")


def create_catalogue():
    op.create_table(
        "title_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        pk("title_series", "id"),
        unique("uq_title_series_code", "code"),
        unique("uq_title_series_name", "name"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("plan_year", sa.Integer(), nullable=False),
        sa.Column("title_series_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("required_hours", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        pk("plans", "id"),
        unique("uq_plans_code", "code"),
        fk("fk_plans_title_series_id_title_series", "title_series_id", "title_series.id"),
        one_of("ck_plans_category", "category", PLAN_CATEGORIES),
        one_of("ck_plans_status", "status", PLAN_STATUSES),
        check("ck_plans_required_hours_positive", "required_hours > 0"),
        check("ck_plans_price_fen_not_negative", "price_fen >= 0"),
        check("ck_plans_plan_year_range", "plan_year BETWEEN 2000 AND 2100"),
        check("ck_plans_series_matches_category",
              "(category = 'public' AND title_series_id IS NULL) OR "
              "(category = 'professional' AND title_series_id IS NOT NULL)"),
        **TABLE_OPTIONS,
    )
    index("ix_plans_category_year", "plans", "category", "plan_year")
    index("ix_plans_title_series_id", "plans", "title_series_id")

    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("teacher", sa.String(100), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("credit_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        pk("courses", "id"),
        unique("uq_courses_code", "code"),
        check("ck_courses_credit_hours_positive", "credit_hours > 0"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "chapters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(48), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("media_url", sa.String(512), nullable=False),
        pk("chapters", "id"),
        unique("uq_chapters_code", "code"),
        unique("uq_chapters_course_id_position", "course_id", "position"),
        fk("fk_chapters_course_id_courses", "course_id", "courses.id", ondelete="CASCADE"),
        check("ck_chapters_duration_positive", "duration_seconds > 0"),
        check("ck_chapters_position_positive", "position > 0"),
        **TABLE_OPTIONS,
    )

    op.create_table(
        "plan_courses",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        pk("plan_courses", "plan_id", "course_id"),
        fk("fk_plan_courses_plan_id_plans", "plan_id", "plans.id", ondelete="CASCADE"),
        fk("fk_plan_courses_course_id_courses", "course_id", "courses.id"),
        **TABLE_OPTIONS,
    )
    index("ix_plan_courses_course_id", "plan_courses", "course_id")


def create_accounts():
    op.create_table(
        "trainees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("id_number_enc", CIPHERTEXT, nullable=False),
        sa.Column("id_number_hash", LOOKUP_HASH, nullable=False),
        sa.Column("id_number_masked", sa.String(24), nullable=False),
        sa.Column("id_kind", sa.String(20), nullable=False),
        sa.Column("phone_enc", CIPHERTEXT, nullable=True),
        sa.Column("phone_hash", LOOKUP_HASH, nullable=True),
        sa.Column("phone_masked", sa.String(16), nullable=True),
        sa.Column("gender", sa.String(1), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("file_district_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        pk("trainees", "id"),
        unique("uq_trainees_id_number_hash", "id_number_hash"),
        unique("uq_trainees_phone_hash", "phone_hash"),
        fk("fk_trainees_organisation_id_organisations", "organisation_id", "organisations.id"),
        fk("fk_trainees_file_district_id_districts", "file_district_id", "districts.id"),
        one_of("ck_trainees_gender", "gender", GENDERS),
        one_of("ck_trainees_status", "status", TRAINEE_STATUSES),
        one_of("ck_trainees_source", "source", TRAINEE_SOURCES),
        one_of("ck_trainees_id_kind", "id_kind", ID_KINDS),
        **TABLE_OPTIONS,
    )
    index("ix_trainees_organisation_id", "trainees", "organisation_id")
    index("ix_trainees_file_district_id", "trainees", "file_district_id")

    op.create_table(
        "wechat_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("unionid", sa.String(64), nullable=True),
        sa.Column("trainee_id", sa.Integer(), nullable=True),
        sa.Column("nickname", sa.String(100), nullable=True),
        sa.Column("avatar_url", sa.String(512), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("subscribed_at", TIMESTAMP, nullable=True),
        sa.Column("unsubscribed_at", TIMESTAMP, nullable=True),
        sa.Column("scene", sa.String(64), nullable=True),
        sa.Column("scene_organisation_id", sa.Integer(), nullable=True),
        sa.Column("bound_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        pk("wechat_bindings", "id"),
        unique("uq_wechat_bindings_openid", "openid"),
        unique("uq_wechat_bindings_trainee_id", "trainee_id"),
        fk("fk_wechat_bindings_trainee_id_trainees", "trainee_id", "trainees.id"),
        fk("fk_wechat_bindings_scene_organisation_id_organisations", "scene_organisation_id",
           "organisations.id"),
        **TABLE_OPTIONS,
    )
    index("ix_wechat_bindings_unionid", "wechat_bindings", "unionid")
    index("ix_wechat_bindings_scene_organisation_id", "wechat_bindings",
          "scene_organisation_id")


def create_money():
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("out_trade_no", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("invoice_choice", sa.String(8), nullable=False),
        sa.Column("payer_openid", sa.String(64), nullable=True),
        sa.Column("prepay_id", sa.String(64), nullable=True),
        sa.Column("prepay_created_at", TIMESTAMP, nullable=True),
        sa.Column("transaction_id", sa.String(32), nullable=True),
        sa.Column("paid_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_reason", sa.String(255), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        pk("orders", "id"),
        unique("uq_orders_out_trade_no", "out_trade_no"),
        unique("uq_orders_transaction_id", "transaction_id"),
        fk("fk_orders_buyer_id_trainees", "buyer_id", "trainees.id"),
        fk("fk_orders_plan_id_plans", "plan_id", "plans.id"),
        one_of("ck_orders_kind", "kind", ORDER_KINDS),
        one_of("ck_orders_state", "state", ORDER_STATES),
        one_of("ck_orders_invoice_choice", "invoice_choice", INVOICE_CHOICES),
        check("ck_orders_amount_fen_positive", "amount_fen > 0"),
        **TABLE_OPTIONS,
    )
    index("ix_orders_buyer_state", "orders", "buyer_id", "state")
    index("ix_orders_state_expires_at", "orders", "state", "expires_at")
    index("ix_orders_plan_id", "orders", "plan_id")

    op.create_table(
        "order_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("open_key", sa.String(32), nullable=True),
        pk("order_items", "id"),
        unique("uq_order_items_order_id_trainee_id", "order_id", "trainee_id"),
        # One open (unpaid) line per trainee and plan: see docs/schema.md.
        unique("uq_order_items_open_key", "open_key"),
        fk("fk_order_items_order_id_orders", "order_id", "orders.id"),
        fk("fk_order_items_trainee_id_trainees", "trainee_id", "trainees.id"),
        fk("fk_order_items_plan_id_plans", "plan_id", "plans.id"),
        one_of("ck_order_items_state", "state", ITEM_STATES),
        check("ck_order_items_price_fen_not_negative", "price_fen >= 0"),
        **TABLE_OPTIONS,
    )
    index("ix_order_items_trainee_plan", "order_items", "trainee_id", "plan_id")
    index("ix_order_items_plan_id", "order_items", "plan_id")

    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(80), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("refund_id", sa.String(32), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        pk("refunds", "id"),
        unique("uq_refunds_out_refund_no", "out_refund_no"),
        unique("uq_refunds_refund_id", "refund_id"),
        fk("fk_refunds_order_id_orders", "order_id", "orders.id"),
        fk("fk_refunds_order_item_id_order_items", "order_item_id", "order_items.id"),
        one_of("ck_refunds_state", "state", REFUND_STATES),
        check("ck_refunds_amount_fen_positive", "amount_fen > 0"),
        **TABLE_OPTIONS,
    )
    index("ix_refunds_order_id", "refunds", "order_id")
    index("ix_refunds_order_item_id", "refunds", "order_item_id")

    op.create_table(
        "payment_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("notification_id", sa.String(64), nullable=True),
        sa.Column("wechatpay_serial", sa.String(80), nullable=True),
        sa.Column("wechatpay_timestamp", sa.String(20), nullable=True),
        sa.Column("wechatpay_nonce", sa.String(64), nullable=True),
        sa.Column("wechatpay_signature", sa.String(512), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("out_trade_no", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(40), nullable=True),
        pk("payment_notifications", "id"),
        one_of("ck_payment_notifications_kind", "kind", NOTIFICATION_KINDS),
        **TABLE_OPTIONS,
    )
    index("ix_payment_notifications_received_at", "payment_notifications", "received_at")
    index("ix_payment_notifications_notification_id", "payment_notifications",
          "notification_id")
    index("ix_payment_notifications_out_trade_no", "payment_notifications", "out_trade_no")


def create_study():
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=True),
        sa.Column("earned_hours", sa.Integer(), nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        pk("enrollments", "id"),
        # One enrollment per trainee and plan, whatever the application does.
        unique("uq_enrollments_trainee_id_plan_id", "trainee_id", "plan_id"),
        unique("uq_enrollments_order_item_id", "order_item_id"),
        fk("fk_enrollments_trainee_id_trainees", "trainee_id", "trainees.id"),
        fk("fk_enrollments_plan_id_plans", "plan_id", "plans.id"),
        fk("fk_enrollments_order_item_id_order_items", "order_item_id", "order_items.id"),
        check("ck_enrollments_earned_hours_not_negative", "earned_hours >= 0"),
        **TABLE_OPTIONS,
    )
    index("ix_enrollments_plan_id", "enrollments", "plan_id")

    op.create_table(
        "chapter_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("chapter_id", sa.Integer(), nullable=False),
        sa.Column("credited_seconds", sa.Integer(), nullable=False),
        sa.Column("furthest_position", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.Integer(), nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        pk("chapter_progress", "id"),
        unique("uq_chapter_progress_enrollment_id_chapter_id", "enrollment_id", "chapter_id"),
        fk("fk_chapter_progress_enrollment_id_enrollments", "enrollment_id", "enrollments.id",
           ondelete="CASCADE"),
        fk("fk_chapter_progress_chapter_id_chapters", "chapter_id", "chapters.id"),
        check("ck_chapter_progress_credited_not_negative", "credited_seconds >= 0"),
        **TABLE_OPTIONS,
    )
    index("ix_chapter_progress_chapter_id", "chapter_progress", "chapter_id")

    op.create_table(
        "course_completions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("credit_hours", sa.Integer(), nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=False),
        pk("course_completions", "id"),
        unique("uq_course_completions_enrollment_id_course_id", "enrollment_id", "course_id"),
        fk("fk_course_completions_enrollment_id_enrollments", "enrollment_id",
           "enrollments.id", ondelete="CASCADE"),
        fk("fk_course_completions_course_id_courses", "course_id", "courses.id"),
        **TABLE_OPTIONS,
    )
    index("ix_course_completions_course_id", "course_completions", "course_id")

    op.create_table(
        "study_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("chapter_id", sa.Integer(), nullable=False),
        sa.Column("device_hash", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("last_beat_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("credited_seconds", sa.Integer(), nullable=False),
        sa.Column("beats", sa.Integer(), nullable=False),
        pk("study_sessions", "id"),
        unique("uq_study_sessions_token", "token"),
        fk("fk_study_sessions_enrollment_id_enrollments", "enrollment_id", "enrollments.id",
           ondelete="CASCADE"),
        fk("fk_study_sessions_chapter_id_chapters", "chapter_id", "chapters.id"),
        one_of("ck_study_sessions_end_reason", "end_reason", SESSION_END_REASONS),
        **TABLE_OPTIONS,
    )
    index("ix_study_sessions_enrollment_started", "study_sessions", "enrollment_id",
          "started_at")
    index("ix_study_sessions_chapter_id", "study_sessions", "chapter_id")

    op.create_table(
        "study_beats",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("playing", sa.Boolean(), nullable=False),
        sa.Column("credited_seconds", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(32), nullable=True),
        pk("study_beats", "id"),
        unique("uq_study_beats_session_id_seq", "session_id", "seq"),
        fk("fk_study_beats_session_id_study_sessions", "session_id", "study_sessions.id",
           ondelete="CASCADE"),
        **TABLE_OPTIONS,
    )


def create_certificates():
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial_no", sa.String(32), nullable=False),
        sa.Column("verify_code", sa.String(40), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("holder_name", sa.String(40), nullable=False),
        sa.Column("holder_id_masked", sa.String(24), nullable=False),
        sa.Column("holder_gender", sa.String(1), nullable=False),
        sa.Column("organisation_name", sa.String(100), nullable=True),
        sa.Column("district_name", sa.String(32), nullable=True),
        sa.Column("plan_name", sa.String(100), nullable=False),
        sa.Column("plan_category", sa.String(16), nullable=False),
        sa.Column("plan_year", sa.Integer(), nullable=False),
        sa.Column("credit_hours", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("revoke_reason", sa.String(255), nullable=True),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("pdf_path", sa.String(255), nullable=True),
        sa.Column("pdf_sha256", sa.CHAR(64), nullable=True),
        pk("certificates", "id"),
        unique("uq_certificates_serial_no", "serial_no"),
        unique("uq_certificates_verify_code", "verify_code"),
        fk("fk_certificates_enrollment_id_enrollments", "enrollment_id", "enrollments.id"),
        fk("fk_certificates_trainee_id_trainees", "trainee_id", "trainees.id"),
        fk("fk_certificates_plan_id_plans", "plan_id", "plans.id"),
        fk("fk_certificates_replaces_id_certificates", "replaces_id", "certificates.id"),
        one_of("ck_certificates_state", "state", CERTIFICATE_STATES),
        one_of("ck_certificates_holder_gender", "holder_gender", GENDERS),
        one_of("ck_certificates_plan_category", "plan_category", PLAN_CATEGORIES),
        **TABLE_OPTIONS,
    )
    index("ix_certificates_enrollment_state", "certificates", "enrollment_id", "state")
    index("ix_certificates_trainee_id", "certificates", "trainee_id")
    index("ix_certificates_plan_id", "certificates", "plan_id")
    index("ix_certificates_replaces_id", "certificates", "replaces_id")


def create_invoices():
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("title_kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("tax_number", sa.String(18), nullable=True),
        sa.Column("email", sa.String(120), nullable=True),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("invoice_number", sa.String(40), nullable=True),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=True),
        sa.Column("modification_count", sa.Integer(), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("reversed_at", TIMESTAMP, nullable=True),
        sa.Column("pdf_path", sa.String(255), nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        pk("invoices", "id"),
        unique("uq_invoices_invoice_number", "invoice_number"),
        fk("fk_invoices_order_id_orders", "order_id", "orders.id"),
        fk("fk_invoices_replaces_id_invoices", "replaces_id", "invoices.id"),
        one_of("ck_invoices_state", "state", INVOICE_STATES),
        one_of("ck_invoices_title_kind", "title_kind", TITLE_KINDS),
        check("ck_invoices_amount_fen_positive", "amount_fen > 0"),
        check("ck_invoices_one_modification", "modification_count BETWEEN 0 AND 1"),
        check("ck_invoices_company_has_tax_number",
              "title_kind = 'personal' OR tax_number IS NOT NULL"),
        **TABLE_OPTIONS,
    )
    index("ix_invoices_order_state", "invoices", "order_id", "state")
    index("ix_invoices_replaces_id", "invoices", "replaces_id")
