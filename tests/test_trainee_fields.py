"""The checks on a trainee's name, phone number and gender, shared by registration and roster."""

from __future__ import annotations

import pytest

from tests.factories import id_number
from wx_app.errors import InvalidInput
from wx_app.id_numbers import parse
from wx_app.trainee_fields import check_gender, check_name, check_phone

MAN = id_number(male=True, serial=11)
WOMAN = id_number(male=False, serial=12)


@pytest.mark.parametrize(("typed", "stored"), [
    ("张三", "张三"),
    ("  欧阳娜娜\t", "欧阳娜娜"),
    ("\u3000李四\u3000", "李四"),
    ("阿依古丽·买买提", "阿依古丽·买买提"),
    ("阿依古丽・买买提", "阿依古丽·买买提"),   # katakana middle dot of Japanese input methods
    ("阿依古丽･买买提", "阿依古丽·买买提"),     # its half-width form
    ("阿依古丽•买买提", "阿依古丽·买买提"),     # a bullet
    ("ＪＯＨＮ", "JOHN"),                    # full-width letters
    ("Maria·Lopez", "Maria·Lopez"),
    ("王〇", "王〇"),
    ("𠈌华", "𠈌华"),                        # a rare character outside the basic block
])
def test_a_name_is_trimmed_and_folded(typed, stored):
    """Are surrounding spaces, full-width letters and the separator's variants forgiven?"""
    assert check_name(typed) == stored


@pytest.mark.parametrize(("typed", "reason"), [
    ("", "请输入姓名"),
    ("   ", "请输入姓名"),
    (None, "请输入姓名"),
    ("张 三", "不能有空格"),
    ("张\u3000三", "不能有空格"),
    ("张三*", "不能有符号"),
    ("张三1", "不能有符号"),
    ("张-三", "不能有符号"),
    ("(张三)", "不能有符号"),
    ("·张三", "不能有符号"),
    ("张三·", "不能有符号"),
    ("张··三", "不能有符号"),
    ("张", "2至20个字"),
    ("张" * 21, "2至20个字"),
])
def test_a_name_with_spaces_symbols_or_a_wrong_length_is_refused(typed, reason):
    """Is a name that cannot go onto a certificate refused with the reason in Chinese?"""
    with pytest.raises(InvalidInput) as refused:
        check_name(typed)

    assert refused.value.code == "invalid_name"
    assert reason in refused.value.message


@pytest.mark.parametrize("typed", ["13912345678", " 13912345678 ", "１３９１２３４５６７８",
                                   "\t19912345678\n"])
def test_a_mobile_number_is_eleven_digits(typed):
    """Is a mainland mobile number accepted once trimmed and folded to half-width?"""
    assert check_phone(typed) in {"13912345678", "19912345678"}


@pytest.mark.parametrize(("typed", "reason"), [
    ("", "请输入手机号码"),
    ("1391234567", "应为11位，您输入了10位"),
    ("139123456789", "应为11位，您输入了12位"),
    ("139 1234 5678", "不能有空格"),
    ("139-1234-5678", "不能有空格或其他符号"),
    ("+8613912345678", "只能由数字组成"),
    ("02363001234", "中国大陆的11位手机号码"),
    ("12912345678", "中国大陆的11位手机号码"),
    ("１３９１２３４５６７", "您输入了10位"),
])
def test_a_phone_number_that_is_not_a_mobile_number_is_refused(typed, reason):
    """Is a short, long, spaced or landline number refused with the reason?"""
    with pytest.raises(InvalidInput) as refused:
        check_phone(typed)

    assert refused.value.code == "invalid_phone"
    assert reason in refused.value.message


@pytest.mark.parametrize(("typed", "number", "gender"), [
    ("男", MAN, "M"), ("女", WOMAN, "F"), (" 男 ", MAN, "M"), ("M", MAN, "M"),
    ("f", WOMAN, "F"), ("男性", MAN, "M"), ("Ｆ", WOMAN, "F"),
])
def test_a_gender_that_agrees_with_the_id_number_is_accepted(typed, number, gender):
    """Do 男/女 and M/F map to M and F when the ID number's 17th digit agrees?"""
    assert check_gender(typed, number) == gender
    assert check_gender(typed, parse(number)) == gender


def test_a_gender_that_disagrees_with_the_id_number_is_refused():
    """Is 女 refused for a number whose 17th digit is odd, saying what the number states?"""
    with pytest.raises(InvalidInput) as refused:
        check_gender("女", MAN)

    assert refused.value.code == "gender_mismatch"
    assert "身份证号码显示为男" in refused.value.message


@pytest.mark.parametrize("typed", ["未知", "1", "男女"])
def test_a_gender_that_is_neither_is_refused(typed):
    """Is an answer other than 男 or 女 refused?"""
    with pytest.raises(InvalidInput) as refused:
        check_gender(typed, MAN)

    assert refused.value.code == "invalid_gender"


def test_a_blank_gender_is_refused_unless_optional():
    """Is a blank gender refused on a form, and taken from the ID number when optional?"""
    with pytest.raises(InvalidInput) as refused:
        check_gender("", WOMAN)

    assert refused.value.code == "invalid_gender"
    assert check_gender(None, WOMAN, required=False) == "F"
    assert check_gender(" ", MAN, required=False) == "M"
