"""ID numbers: normalising what people type, the GB 11643 checks, and the permits."""

from __future__ import annotations

from datetime import date

import pytest

from wx_app import id_numbers
from wx_app.id_numbers import InvalidIdNumber, check_character, normalise, parse

# The worked example printed in GB 11643-1999 itself.
STANDARD_EXAMPLE = "11010519491231002X"


def with_check(first_seventeen: str) -> str:
    return first_seventeen + check_character(first_seventeen)


def test_the_standard_example_passes():
    """Does the number printed in the standard pass, with its birth date and gender?"""
    checked = parse(STANDARD_EXAMPLE)

    assert checked.number == STANDARD_EXAMPLE
    assert checked.kind == "resident"
    assert checked.birth_date == date(1949, 12, 31)
    assert checked.gender == "F"  # 17th digit 2: even


def test_gender_comes_from_the_seventeenth_digit():
    """Is an odd 17th digit a man and an even one a woman?"""
    assert parse(with_check("50010619791102031")).gender == "M"
    assert parse(with_check("50010619791102032")).gender == "F"


@pytest.mark.parametrize("typed", [
    "11010519491231002x",                       # lower-case x
    "  11010519491231002X\t",                   # spaces around it
    "１１０１０５１９４９１２３１００２Ｘ",          # full-width digits and letter
    "\u3000１１０１０５１９４９１２３１００２ｘ\u3000",  # ideographic spaces, full-width x
])
def test_what_people_type_is_normalised(typed):
    """Are a lower-case x, surrounding spaces and full-width characters accepted as typed?"""
    assert normalise(typed) == STANDARD_EXAMPLE
    assert parse(typed).number == STANDARD_EXAMPLE


def test_a_wrong_check_character_is_refused():
    """Is a number whose last character does not match the checksum refused, saying so?"""
    with pytest.raises(InvalidIdNumber, match="校验位"):
        parse("110105194912310021")


def test_a_single_mistyped_digit_is_caught():
    """Does changing any one of the first 17 digits make the number fail its checksum?"""
    for position in range(17):
        digit = STANDARD_EXAMPLE[position]
        for replacement in "0123456789":
            if replacement == digit:
                continue
            typo = STANDARD_EXAMPLE[:position] + replacement + STANDARD_EXAMPLE[position + 1:]
            assert not id_numbers.is_valid(typo), typo


@pytest.mark.parametrize("birth", [
    "19490230",  # 30 February
    "19491301",  # month 13
    "19490000",  # day and month 0
    "18991231",  # before 1900
])
def test_an_impossible_birth_date_is_refused(birth):
    """Is a number whose birth date is not a real date refused, even with a good checksum?"""
    with pytest.raises(InvalidIdNumber, match="出生日期"):
        parse(with_check(f"110105{birth}002"))


def test_a_birth_date_in_the_future_is_refused():
    """Is someone born tomorrow refused?"""
    number = with_check("11010520300101002")

    with pytest.raises(InvalidIdNumber, match="出生日期"):
        parse(number, today=date(2029, 12, 31))
    assert parse(number, today=date(2030, 1, 1)).birth_date == date(2030, 1, 1)


def test_a_leap_day_is_a_real_birth_date():
    """Is 29 February accepted in a leap year?"""
    assert parse(with_check("50010120000229001")).birth_date == date(2000, 2, 29)


@pytest.mark.parametrize("typed, reason", [
    ("", "请输入"),
    ("1101051949123100", "18位"),           # 16 characters
    ("110105194912310", "18位"),            # the old 15-digit card
    ("11010519491231002XX", "18位"),
    ("1101051949123100X2", "数字组成"),      # X not last
    ("11010519491231 02X", "数字组成"),
    ("A10105194912310021", "数字组成"),
])
def test_malformed_numbers_are_refused_with_the_reason(typed, reason):
    """Is a number of the wrong length or with stray characters refused, saying why?"""
    with pytest.raises(InvalidIdNumber, match=reason):
        parse(typed)


@pytest.mark.parametrize("prefix, place", [
    ("810000", "Hong Kong"), ("820000", "Macao"), ("830000", "Taiwan"),
])
def test_residence_permits_of_hong_kong_macao_and_taiwan_are_accepted(prefix, place):
    """Is a 港澳台居民居住证 number accepted and recognised as a permit?"""
    checked = parse(with_check(f"{prefix}19900101003"))

    assert checked.kind == "hmt_permit", place
    assert checked.birth_date == date(1990, 1, 1)
    assert checked.gender == "M"


def test_foreign_permanent_residence_id_is_accepted():
    """Is the new 外国人永久居留身份证 (starting with 9) accepted and recognised?"""
    checked = parse(with_check("93384019850612002"))

    assert checked.kind == "foreign_permanent"
    assert checked.birth_date == date(1985, 6, 12)
    assert checked.gender == "F"


def test_region_codes_are_not_checked_against_a_list():
    """Is a number under a retired or unknown region code still accepted?"""
    # 510221 was a county of Sichuan before Chongqing became a municipality in 1997.
    assert parse(with_check("51022119700101001")).kind == "resident"
    assert parse(with_check("00000019700101001")).kind == "resident"


def test_the_last_six_characters_are_kept_in_upper_case():
    """Does `last_six` give the characters the initial password is built from?"""
    assert parse("11010519491231002x").last_six == "31002X"


def test_is_valid_answers_without_raising():
    """Does is_valid say yes to a good number and no to a bad one?"""
    assert id_numbers.is_valid(STANDARD_EXAMPLE)
    assert not id_numbers.is_valid("110105194912310021")
    assert not id_numbers.is_valid("not a number")
