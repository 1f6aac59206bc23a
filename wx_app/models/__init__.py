"""Every table of the shared schema; importing this registers them all (docs/schema.md)."""

from .accounts import Trainee, WechatBinding
from .catalog import Chapter, Course, Plan, PlanCourse, TitleSeries
from .certificates import Certificate
from .invoices import Invoice
from .orders import Order, OrderItem, PaymentNotification, Refund
from .places import District, Organisation
from .study import ChapterProgress, CourseCompletion, Enrollment, StudyBeat, StudySession

__all__ = [
    "Certificate", "Chapter", "ChapterProgress", "Course", "CourseCompletion", "District",
    "Enrollment", "Invoice", "Order", "OrderItem", "Organisation", "PaymentNotification",
    "Plan", "PlanCourse", "Refund", "StudyBeat", "StudySession", "TitleSeries", "Trainee",
    "WechatBinding",
]
