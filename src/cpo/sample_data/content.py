"""The bundled approved-content corpus of the fictional brand Fernleaf Outdoor Co.

Forty documents (product, promotion and support copy) written so that every
sentence can be quoted on its own in an email: each sentence names the product or
offer it is about, and concrete facts (prices, percentages, dates, offer codes,
tier names) are the same in every document that mentions them.

Brand facts used across the corpus (keep them consistent when editing):

* Products: Summit Ridge 2 tent $329, Summit Ridge 4 tent $479, Alpine Loft 20
  down sleeping bag $299, Meadow 40 Synthetic Sleeping Bag $99, Stormline Rain
  Jacket $199, Glacier Down Parka $349, Ridgeline Synthetic Vest $129, Granite
  Trail Hiking Boots $179, Cascade 30 Daypack $119, Timberline 65 pack $289,
  Merino Base Layer Crew $79 and Bottoms $69, Emberlight Headlamp $39, TrailBrew
  Camp Stove $89, Ridgeback Carbon Trekking Poles $149, Driftwood Camp Chair $69,
  Canopy Hammock $59, Fernleaf Trail Socks $24 (3-pack), Beginner Camping Kit $469.
* Summit Series (premium line): Alpine Loft 20, Glacier Down Parka, Timberline 65,
  Ridgeback Carbon Trekking Poles.
* Fernleaf Rewards tiers: Bronze 1, Silver 1.5, Gold 2 points per dollar; Silver
  from $500 and Gold from $1,000 spent in a calendar year; 100 points = $5 credit;
  points expire after 18 months without account activity.
* Trailhead Plus membership: $49 a year; free standard shipping with no minimum,
  free return shipping, 48-hour early access to sales, one free Repair Shop
  service a year (up to $40), 10% off gear rentals.
* Shipping: free standard shipping from $75; otherwise $6.95 (3-5 business days);
  express $14.95 (1-2 business days). Returns: 60 days (Gold members 90 days);
  mail returns $5.95 unless Trailhead Plus or Gold. Warranty: 5 years on tents,
  packs, sleeping bags and trekking poles; 2 years on apparel, footwear and
  accessories; 1 year on Second Trail used gear. Price match within 14 days.
* Offer codes: WELCOME15, FIRSTLIGHT, GOLD20, COMEBACK25, TRAILBACK, SPRING15 and
  the expired HOLIDAY30.

:func:`write_content` writes one JSON file per document; the output is the same
bytes on every run. Run ``python -m cpo.sample_data.content`` to regenerate the
bundled files and the control message.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATEGORIES: tuple[str, ...] = ("product", "promotion", "support")
AUDIENCES: tuple[str, ...] = ("All", "High-Value Recent", "At-Risk", "New Customer", "Standard")
BASE_URL = "https://www.fernleaf.example.com"

#: Keys of a document record, in the order they are written.
RECORD_KEYS: tuple[str, ...] = (
    "document_id",
    "title",
    "category",
    "content",
    "audience",
    "keywords",
    "approval_date",
    "expiry_date",
    "source_url",
    "metadata",
)


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    """One approved-content document as Python data.

    Attributes:
        document_id: Unique id, e.g. ``FERN-PRD-001``; also the file name.
        title: Document title, used in citations.
        category: One of :data:`CATEGORIES`.
        audience: One of :data:`AUDIENCES` (a default segment name, or "All").
        keywords: Lowercase behaviour and topic keywords.
        paragraphs: Paragraph texts, in order (cited as ¶1, ¶2, ...).
        approval_date: ISO date the copy was approved.
        expiry_date: ISO date after which the copy must not be used, or None.
        path: URL path under :data:`BASE_URL`.
        author: Metadata author.
        version: Metadata version string.
        last_updated: ISO date of the last edit.
    """

    document_id: str
    title: str
    category: str
    audience: str
    keywords: tuple[str, ...]
    paragraphs: tuple[str, ...]
    approval_date: str
    expiry_date: str | None
    path: str
    author: str
    version: str
    last_updated: str

    @property
    def content(self) -> str:
        """Return the paragraphs joined by blank lines."""
        return "\n\n".join(self.paragraphs)

    @property
    def source_url(self) -> str:
        """Return the public URL of the document."""
        return BASE_URL + self.path

    def to_record(self) -> dict[str, Any]:
        """Return the JSON record, keys in :data:`RECORD_KEYS` order."""
        return {
            "document_id": self.document_id,
            "title": self.title,
            "category": self.category,
            "content": self.content,
            "audience": self.audience,
            "keywords": list(self.keywords),
            "approval_date": self.approval_date,
            "expiry_date": self.expiry_date,
            "source_url": self.source_url,
            "metadata": {
                "author": self.author,
                "version": self.version,
                "last_updated": self.last_updated,
            },
        }


def _paragraphs(text: str) -> tuple[str, ...]:
    """Split a blank-line separated block into paragraphs with single spaces."""
    blocks = re.split(r"\n\s*\n", textwrap.dedent(text).strip())
    return tuple(" ".join(block.split()) for block in blocks)


def _doc(
    document_id: str,
    title: str,
    category: str,
    audience: str,
    keywords: str,
    dates: tuple[str, str | None, str],
    path: str,
    meta: tuple[str, str],
    text: str,
) -> DocumentSpec:
    """Build a spec; ``keywords`` is comma separated, ``dates`` is (approval, expiry, updated)."""
    approval, expiry, updated = dates
    author, version = meta
    return DocumentSpec(
        document_id=document_id,
        title=title,
        category=category,
        audience=audience,
        keywords=tuple(k.strip() for k in keywords.split(",")),
        paragraphs=_paragraphs(text),
        approval_date=approval,
        expiry_date=expiry,
        path=path,
        author=author,
        version=version,
        last_updated=updated,
    )


_PRODUCT = "Maya Okafor"
_PRODUCT_2 = "Tom Lindqvist"
_MARKETING = "Daniel Reyes"
_SUPPORT = "Priya Nair"

DOCUMENTS: tuple[DocumentSpec, ...] = (
    # ------------------------------------------------------------------ products
    _doc(
        "FERN-PRD-001",
        "Summit Ridge 2 Backpacking Tent",
        "product",
        "All",
        "tent, backpacking, camping, lightweight, value",
        ("2026-02-10", None, "2026-02-06"),
        "/products/summit-ridge-2",
        (_PRODUCT, "1.3"),
        """
        The Summit Ridge 2 tent is the best-selling two-person backpacking shelter at Fernleaf,
        priced at $329. The Summit Ridge 2 weighs 1.8 kg on the trail, so you can carry it
        comfortably on long hikes. Two doors and two vestibules on the Summit Ridge 2 give each
        camper a private entry and a dry spot for boots.

        The Summit Ridge 2 sets up in about five minutes with a single hubbed pole frame and
        color-coded clips. A full-coverage rainfly and bathtub floor keep the Summit Ridge 2 dry
        through three-season storms. Fernleaf designed the Summit Ridge 2 for backpackers who want
        a roomy shelter without a heavy pack.

        Every Summit Ridge 2 tent is covered by the Fernleaf 5-year warranty on tents, packs,
        sleeping bags and trekking poles. You can compare colors, specs and customer reviews of
        the Summit Ridge 2 on the Fernleaf website before you choose.
        """,
    ),
    _doc(
        "FERN-PRD-002",
        "Summit Ridge 4 Family Tent",
        "product",
        "Standard",
        "tent, family camping, car camping, camping, value",
        ("2026-02-10", None, "2026-02-06"),
        "/products/summit-ridge-4",
        (_PRODUCT, "1.1"),
        """
        The Summit Ridge 4 family tent gives four campers room to stretch out for $479.
        Near-vertical walls and a 190 cm peak height let you stand up and change inside the
        Summit Ridge 4. Two large doors on the Summit Ridge 4 make getting in and out easy, even
        with kids and dogs.

        The Summit Ridge 4 weighs 5.2 kg packed, which suits car camping and short walks to a
        campsite. A color-coded pole system lets two people pitch the Summit Ridge 4 in about ten
        minutes. Mesh ceiling panels on the Summit Ridge 4 bring in a cool breeze on warm summer
        nights.

        Every Summit Ridge 4 tent is covered by the Fernleaf 5-year warranty against defects in
        materials and workmanship. Fernleaf Rewards members earn points on every Summit Ridge 4
        purchase, starting at 1 point per dollar for Bronze members.
        """,
    ),
    _doc(
        "FERN-PRD-003",
        "Alpine Loft 20 Down Sleeping Bag",
        "product",
        "High-Value Recent",
        "premium, sleeping bag, down, summit series, loyalty, exclusive",
        ("2026-03-02", None, "2026-02-26"),
        "/products/alpine-loft-20",
        (_PRODUCT, "2.0"),
        """
        The Alpine Loft 20 is the flagship sleeping bag in the Fernleaf Summit Series, priced at
        $299. The Alpine Loft 20 is rated to 20°F (-7°C) and uses 800-fill responsibly sourced
        down for warmth without bulk. Weighing just 1.1 kg, the Alpine Loft 20 packs small enough
        to fit in the bottom of a 30-liter daypack.

        A draft collar and contoured hood on the Alpine Loft 20 hold warmth in on cold alpine
        nights. The Alpine Loft 20 shell is treated to shed condensation and light moisture, so
        the down stays lofty. Fernleaf builds every Summit Series piece for customers who spend
        real time in the mountains and expect their gear to keep up.

        Gold members of Fernleaf Rewards earn 2 points per dollar on the Alpine Loft 20 and every
        other Summit Series item. Your Alpine Loft 20 is covered by the Fernleaf 5-year warranty
        on sleeping bags.
        """,
    ),
    _doc(
        "FERN-PRD-004",
        "Stormline Rain Jacket",
        "product",
        "All",
        "rain jacket, waterproof, apparel, hiking, seasonal",
        ("2026-03-16", None, "2026-03-12"),
        "/products/stormline-rain-jacket",
        (_PRODUCT_2, "1.4"),
        """
        The Stormline Rain Jacket is the everyday waterproof shell from Fernleaf, priced at $199.
        A three-layer recycled fabric with a 20,000 mm waterproof rating keeps the Stormline Rain
        Jacket dry in steady rain. Pit zips on the Stormline Rain Jacket let heat escape on steep
        climbs so you stay comfortable.

        The Stormline Rain Jacket weighs 380 g and packs into its own chest pocket for easy
        carrying. An adjustable hood on the Stormline Rain Jacket fits over a climbing helmet or a
        warm hat. Fernleaf offers the Stormline Rain Jacket in men's and women's fits, from XS to
        XXL.

        Your Stormline Rain Jacket is covered by the Fernleaf 2-year warranty on apparel and
        footwear. The Fernleaf Repair Shop can reseal seams or replace zippers on a Stormline Rain
        Jacket long after the warranty period ends.
        """,
    ),
    _doc(
        "FERN-PRD-005",
        "Granite Trail Hiking Boots",
        "product",
        "Standard",
        "boots, footwear, hiking, waterproof, value",
        ("2026-03-16", None, "2026-03-10"),
        "/products/granite-trail-boots",
        (_PRODUCT_2, "1.2"),
        """
        The Granite Trail Hiking Boots combine waterproof protection and all-day comfort for $179.
        A breathable waterproof membrane in the Granite Trail boots keeps your feet dry through
        puddles and stream crossings. A grippy rubber outsole on the Granite Trail boots holds
        firm on wet rock, mud and loose gravel.

        The Granite Trail Hiking Boots need very little break-in, thanks to a padded collar and a
        cushioned midsole. Fernleaf makes the Granite Trail Hiking Boots in men's sizes 7 to 14
        and women's sizes 5 to 12, including half sizes. The Fernleaf Size and Fit Guide explains
        how to measure your feet before you order hiking boots.

        Your Granite Trail Hiking Boots are covered by the Fernleaf 2-year warranty on footwear.
        Unused Granite Trail boots can be returned within 60 days, so you can test the fit at home
        on carpet first.
        """,
    ),
    _doc(
        "FERN-PRD-006",
        "Cascade 30 Daypack",
        "product",
        "New Customer",
        "daypack, welcome, first purchase, onboarding, hiking, value",
        ("2026-04-01", None, "2026-03-27"),
        "/products/cascade-30-daypack",
        (_PRODUCT, "1.0"),
        """
        The Cascade 30 Daypack is a versatile first pack for day hikes, commutes and weekend
        trips, priced at $119. The Cascade 30 holds 30 liters, enough for water, layers, lunch and
        a first-aid kit. A padded, ventilated back panel on the Cascade 30 keeps you cool and
        comfortable on warm days.

        The Cascade 30 Daypack includes a built-in rain cover that tucks into a zippered pocket at
        the base. A hydration sleeve and two stretch side pockets on the Cascade 30 keep water
        within easy reach. Fernleaf recommends the Cascade 30 to new hikers because one pack
        covers almost every day outdoors.

        Your Cascade 30 Daypack is covered by the Fernleaf 5-year warranty on packs. Fernleaf
        offers free standard shipping on orders of $75 or more, so a Cascade 30 Daypack order
        ships free.
        """,
    ),
    _doc(
        "FERN-PRD-007",
        "Timberline 65 Backpacking Pack",
        "product",
        "High-Value Recent",
        "premium, backpack, backpacking, summit series, multi-day, loyalty",
        ("2026-04-01", None, "2026-03-30"),
        "/products/timberline-65",
        (_PRODUCT, "1.5"),
        """
        The Timberline 65 is the Fernleaf Summit Series pack for multi-day trips, priced at $289.
        The Timberline 65 carries loads up to 23 kg on an aluminum frame that moves weight onto
        your hips. An adjustable torso length lets you tune the Timberline 65 to your back in a
        few minutes.

        The Timberline 65 weighs 2.1 kg and opens from the top, the front and the bottom for easy
        packing. A removable lid on the Timberline 65 converts into a small summit bag for side
        trips from camp. Fernleaf tested the Timberline 65 on long routes where comfort on the
        fifth day matters as much as on the first.

        Your Timberline 65 is covered by the Fernleaf 5-year warranty on packs. Gold members of
        Fernleaf Rewards earn 2 points per dollar on the Timberline 65 and every other Summit
        Series item.
        """,
    ),
    _doc(
        "FERN-PRD-008",
        "Merino Base Layer Collection",
        "product",
        "Standard",
        "base layer, merino, apparel, layering, seasonal, value",
        ("2026-04-20", None, "2026-04-15"),
        "/products/merino-base-layers",
        (_PRODUCT_2, "1.1"),
        """
        The Fernleaf Merino Base Layer collection keeps you warm, dry and fresh on cold-weather
        adventures. The Merino Base Layer Crew top costs $79, and the matching Merino Base Layer
        Bottoms cost $69. Fernleaf knits the Merino Base Layer collection from midweight 200 gsm
        merino wool that resists odor over several days of wear.

        Merino wool in the Fernleaf base layers stays warm even when damp, which helps on sweaty
        climbs and chilly rest stops. Flat seams on the Merino Base Layer Crew and Bottoms sit
        comfortably under a pack and hip belt. You can wear Fernleaf merino base layers on their
        own on cool days or under a shell in winter.

        Fernleaf Merino Base Layers are covered by the Fernleaf 2-year warranty on apparel.
        Fernleaf Rewards members earn points on every merino purchase, and those points add up
        quickly across a season.
        """,
    ),
    _doc(
        "FERN-PRD-009",
        "First Trip Essentials: Emberlight Headlamp and TrailBrew Stove",
        "product",
        "New Customer",
        "welcome, first purchase, onboarding, headlamp, stove, camping",
        ("2026-04-20", None, "2026-04-17"),
        "/products/first-trip-essentials",
        (_PRODUCT, "1.0"),
        """
        The Emberlight Headlamp and the TrailBrew Camp Stove are two small items Fernleaf
        recommends for your first overnight trip. The Emberlight Headlamp costs $39 and puts out
        up to 400 lumens from a USB-C rechargeable battery. On its low setting, the Emberlight
        Headlamp runs for up to 40 hours on a single charge.

        The TrailBrew Camp Stove costs $89 and boils one liter of water in about 3.5 minutes. The
        TrailBrew Camp Stove folds to the size of a deck of cards and fits inside most camp
        cooking pots. A built-in push-button starter on the TrailBrew Camp Stove means you do not
        need matches to start cooking.

        Fernleaf staff pick the Emberlight Headlamp and TrailBrew Camp Stove because both are
        simple to learn and reliable on a first trip. You can find the Emberlight Headlamp and
        TrailBrew Camp Stove together in the Fernleaf Beginner Camping Kit.
        """,
    ),
    _doc(
        "FERN-PRD-010",
        "Glacier Down Parka",
        "product",
        "High-Value Recent",
        "premium, parka, down, summit series, exclusive, vip",
        ("2026-05-04", None, "2026-04-30"),
        "/products/glacier-down-parka",
        (_PRODUCT_2, "1.2"),
        """
        The Glacier Down Parka is the warmest jacket in the Fernleaf Summit Series, priced at
        $349. The Glacier Down Parka is filled with 800-fill responsibly sourced down and reaches
        below your hips for extra warmth. A water-resistant shell on the Glacier Down Parka sheds
        snow and light drizzle on winter walks and ski-town evenings.

        An insulated hood and fleece-lined hand pockets on the Glacier Down Parka keep the cold
        out on still, frosty mornings. The Glacier Down Parka compresses into its own stuff sack,
        so you can take it on alpine trips. Fernleaf designed the Glacier Down Parka for customers
        who want one jacket for serious winter conditions.

        Gold members of Fernleaf Rewards get early access to new Summit Series colors of the
        Glacier Down Parka before public release. Your Glacier Down Parka is covered by the
        Fernleaf 2-year warranty on apparel.
        """,
    ),
    _doc(
        "FERN-PRD-011",
        "Ridgeback Carbon Trekking Poles",
        "product",
        "High-Value Recent",
        "premium, trekking poles, summit series, carbon, hiking, loyalty",
        ("2026-05-04", None, "2026-05-01"),
        "/products/ridgeback-carbon-poles",
        (_PRODUCT_2, "1.0"),
        """
        The Ridgeback Carbon Trekking Poles are the lightest poles in the Fernleaf Summit Series,
        priced at $149 a pair. A pair of Ridgeback Carbon Trekking Poles weighs 430 g, so you
        barely notice the poles strapped to your pack. Lever locks on the Ridgeback Carbon
        Trekking Poles adjust from 100 to 135 cm in seconds, even with gloves on.

        Cork grips on the Ridgeback Carbon Trekking Poles absorb sweat and mold to your hands over
        time. Ridgeback Carbon Trekking Poles ease the strain on your knees on long descents and
        steady you on river crossings. Fernleaf includes trekking baskets and snow baskets with
        every pair of Ridgeback Carbon Trekking Poles.

        Your Ridgeback Carbon Trekking Poles are covered by the Fernleaf 5-year warranty on
        trekking poles. Gold members of Fernleaf Rewards earn 2 points per dollar on Ridgeback
        Carbon Trekking Poles and every other Summit Series item.
        """,
    ),
    _doc(
        "FERN-PRD-012",
        "What's New at Fernleaf This Season",
        "product",
        "At-Risk",
        "re-engagement, win-back, new arrivals, seasonal, lapsed",
        ("2026-09-14", None, "2026-09-10"),
        "/new",
        (_MARKETING, "1.0"),
        """
        Fernleaf has added new gear and fresh colors since your last visit, and there is plenty
        worth a look. The new Ridgeline Synthetic Vest costs $129 and adds warmth without bulk
        under a shell or on its own. The Stormline Rain Jacket now uses a fully recycled
        three-layer fabric and still costs $199.

        The Summit Ridge 2 tent, still priced at $329, now comes in a new Lichen Green color
        alongside the classic Slate Gray. Fernleaf also rebuilt its website so you can filter gear
        by trip type, season and weight in a few clicks. Fernleaf stores now offer free pack and
        boot fittings with no appointment needed.

        Your Fernleaf account and saved sizes are still on file, so getting back to shopping
        takes only a moment. You can see every new Fernleaf arrival, from the Ridgeline Synthetic
        Vest to the Lichen Green Summit Ridge 2, on the What's New page.
        """,
    ),
    _doc(
        "FERN-PRD-013",
        "Second Trail Certified Used Gear",
        "product",
        "At-Risk",
        "value, win-back, trade-in, used gear, sustainability, re-engagement",
        ("2026-06-08", None, "2026-06-03"),
        "/second-trail",
        (_PRODUCT, "1.1"),
        """
        Second Trail is the Fernleaf program for trading in and buying certified used outdoor
        gear. Through Second Trail, you can trade in Fernleaf gear in good condition for Fernleaf
        credit of up to $100 per item. Every Second Trail item is inspected, cleaned and repaired
        by the Fernleaf Repair Shop before resale.

        Second Trail gear sells for up to 40% below the price of the same item new. Each Second
        Trail item carries a 1-year Fernleaf warranty against defects in materials and
        workmanship. Buying through Second Trail keeps good gear on the trail and out of
        landfills.

        Second Trail is a simple way to refresh your kit if older Fernleaf gear is sitting unused
        in a closet. You can start a Second Trail trade-in online or at any Fernleaf store, and
        your credit arrives within 5 business days of inspection.
        """,
    ),
    _doc(
        "FERN-PRD-014",
        "Fernleaf Beginner Camping Kit",
        "product",
        "New Customer",
        "welcome, first purchase, beginner, camping, bundle, onboarding, value",
        ("2026-06-08", None, "2026-06-05"),
        "/products/beginner-camping-kit",
        (_PRODUCT, "1.0"),
        """
        The Fernleaf Beginner Camping Kit puts everything you need for a first night outdoors in
        one box for $469. The Beginner Camping Kit includes a Summit Ridge 2 tent, a Meadow 40
        Synthetic Sleeping Bag, an Emberlight Headlamp and a TrailBrew Camp Stove. Bought
        separately, the four items in the Beginner Camping Kit cost $556, so the kit saves you
        $87.

        The Meadow 40 Synthetic Sleeping Bag in the Beginner Camping Kit is rated to 40°F (4°C)
        and sells on its own for $99. Fernleaf includes a printed first-trip checklist and a
        pitching guide in every Beginner Camping Kit. The Beginner Camping Kit is a simple
        starting point if you are new to camping and unsure what to buy first.

        Every item in the Beginner Camping Kit carries its normal Fernleaf warranty, including 5
        years on the tent and sleeping bag. The Beginner Camping Kit ships free, since Fernleaf
        offers free standard shipping on orders of $75 or more.
        """,
    ),
    _doc(
        "FERN-PRD-015",
        "Driftwood Camp Chair and Canopy Hammock",
        "product",
        "All",
        "camp furniture, hammock, chair, camping, relaxation, value",
        ("2026-07-06", None, "2026-07-01"),
        "/products/camp-comfort",
        (_PRODUCT_2, "1.0"),
        """
        The Driftwood Camp Chair and the Canopy Hammock are the favorite ways to relax at camp for
        the Fernleaf team. The Driftwood Camp Chair costs $69, supports up to 136 kg and folds
        into a bag the size of a water bottle. Weighing 0.9 kg, the Driftwood Camp Chair is light
        enough for backpacking and sturdy enough for the backyard.

        The Canopy Hammock costs $59 and comes with tree-friendly straps so you can set it up
        between two trees in minutes. The Canopy Hammock holds up to 180 kg and packs into an
        attached pouch about the size of a grapefruit. Breathable nylon on the Canopy Hammock
        dries fast after a swim or an afternoon shower.

        The Driftwood Camp Chair and Canopy Hammock are covered by the Fernleaf 2-year warranty on
        accessories. A Driftwood Camp Chair or a Canopy Hammock makes an easy gift for anyone who
        loves slow mornings outdoors.
        """,
    ),
    _doc(
        "FERN-PRD-016",
        "Fernleaf Favorites: Our Best Sellers",
        "product",
        "At-Risk",
        "win-back, re-engagement, best sellers, value, lapsed, favorites",
        ("2026-09-14", None, "2026-09-11"),
        "/best-sellers",
        (_MARKETING, "1.1"),
        """
        Fernleaf customers keep coming back for a short list of best sellers that have earned
        their place on the trail. The Summit Ridge 2 tent at $329 remains the most popular
        two-person tent Fernleaf sells. The Stormline Rain Jacket at $199 is the top-rated shell
        among Fernleaf customers for a third year running.

        The Granite Trail Hiking Boots at $179 are the most reviewed footwear in the Fernleaf
        catalog. Fernleaf Trail Socks cost $24 for a 3-pack and are the most common add-on to any
        Fernleaf order. Fernleaf Trail Socks use a merino blend that cushions your feet and dries
        quickly after stream crossings.

        Placing an order keeps your Fernleaf Rewards points active, so a quick restock of
        favorites protects your balance. If you have been away for a while, the Fernleaf best
        sellers are an easy place to start again.
        """,
    ),
    # ---------------------------------------------------------------- promotions
    _doc(
        "FERN-PRM-001",
        "WELCOME15: 15% Off Your First Order",
        "promotion",
        "New Customer",
        "welcome, first purchase, new customer, onboarding, discount, offer code",
        ("2026-01-12", "2027-12-31", "2026-01-08"),
        "/offers/welcome15",
        (_MARKETING, "2.1"),
        """
        Welcome to Fernleaf, and thank you for joining a community of hikers, campers and
        weekend explorers. New customers can take 15% off a first Fernleaf order with code
        WELCOME15. Code WELCOME15 is valid through 31 December 2027 and can be used once per
        customer.

        The WELCOME15 discount applies to full-price and sale gear but not to gift cards or
        Trailhead Plus memberships. Fernleaf orders of $75 or more ship free with standard
        shipping, so your first order may ship free as well. You can enter WELCOME15 at checkout
        on the Fernleaf website or show the code at any Fernleaf store.

        Joining Fernleaf Rewards is free, and your first purchase starts you at Bronze tier with
        1 point per dollar. Your WELCOME15 savings and your first Fernleaf Rewards points arrive
        with the same order.
        """,
    ),
    _doc(
        "FERN-PRM-002",
        "GOLD20: Gold Member Early Access to the Summit Series",
        "promotion",
        "High-Value Recent",
        "premium, vip, gold, loyalty, exclusive, early access, summit series",
        ("2026-10-05", "2027-03-31", "2026-10-01"),
        "/offers/gold20",
        (_MARKETING, "1.2"),
        """
        Gold members of Fernleaf Rewards can take 20% off the entire Summit Series with code
        GOLD20 through 31 March 2027. The GOLD20 offer covers the Glacier Down Parka, the Alpine
        Loft 20 sleeping bag, the Timberline 65 pack and the Ridgeback Carbon Trekking Poles.

        With GOLD20, the Glacier Down Parka drops from $349 to $279.20 and the Alpine Loft 20
        drops from $299 to $239.20. Gold members also get 48 hours of early access to every
        Fernleaf seasonal sale before the public launch. Gold members can use code GOLD20 online
        and in Fernleaf stores, as many times as they like before the offer ends.

        Fernleaf created the GOLD20 offer to thank Gold members, who spend $1,000 or more with
        Fernleaf in a calendar year. The GOLD20 offer is an exclusive way to upgrade your kit
        with the premium Fernleaf Summit Series before the spring season.
        """,
    ),
    _doc(
        "FERN-PRM-003",
        "COMEBACK25: 25% Off When You Come Back",
        "promotion",
        "At-Risk",
        "win-back, re-engagement, lapsed, we miss you, discount, offer code",
        ("2026-10-12", "2027-02-28", "2026-10-08"),
        "/offers/comeback25",
        (_MARKETING, "1.0"),
        """
        Fernleaf has missed you, and the COMEBACK25 welcome-back offer is waiting in your
        account. Returning customers can take 25% off one full-price order of $100 or more with
        code COMEBACK25. Code COMEBACK25 is valid through 28 February 2027 and can be used once
        per customer.

        COMEBACK25 applies to tents, packs, apparel and footwear, including the Summit Ridge 2
        tent and the Stormline Rain Jacket. With COMEBACK25, a Summit Ridge 2 tent at $329 costs
        $246.75 before tax. The COMEBACK25 offer also works on the Granite Trail Hiking Boots, a
        favorite with Fernleaf customers getting back on the trail.

        Your Fernleaf Rewards account and points history are still on file, so you can pick up
        right where you left off. You can use COMEBACK25 at checkout on the Fernleaf website or
        at any Fernleaf store before 28 February 2027.
        """,
    ),
    _doc(
        "FERN-PRM-004",
        "Winter Layering Sale: 20% Off Jackets and Base Layers",
        "promotion",
        "Standard",
        "seasonal, sale, winter, layering, apparel, value",
        ("2026-10-19", "2027-01-31", "2026-10-14"),
        "/offers/winter-layering-sale",
        (_MARKETING, "1.0"),
        """
        The Fernleaf Winter Layering Sale takes 20% off all jackets and base layers through 31
        January 2027. No code is needed for the Winter Layering Sale, because the discount
        appears automatically online and in Fernleaf stores.

        During the Winter Layering Sale, the Stormline Rain Jacket is $159.20 instead of $199.
        The Merino Base Layer Crew is $63.20 instead of $79 during the Winter Layering Sale. The
        Glacier Down Parka is included in the Winter Layering Sale at $279.20 instead of $349.

        Layering a merino base, an insulated mid layer and a waterproof shell keeps you
        comfortable across changing winter weather. Winter Layering Sale prices end on 31 January
        2027, and popular sizes and colors tend to sell out early. Fernleaf Rewards members still
        earn points on every Winter Layering Sale purchase.
        """,
    ),
    _doc(
        "FERN-PRM-005",
        "Free Express Shipping for Gold Members",
        "promotion",
        "High-Value Recent",
        "vip, gold, loyalty, premium, exclusive, shipping",
        ("2026-01-19", "2027-12-31", "2026-01-15"),
        "/offers/gold-express-shipping",
        (_MARKETING, "1.1"),
        """
        Gold members of Fernleaf Rewards get free express shipping on every order, with no
        minimum, through 31 December 2027. Fernleaf express shipping normally costs $14.95 and
        delivers in 1 to 2 business days.

        The Gold free express shipping benefit is applied automatically when you sign in to your
        Fernleaf account at checkout. Fernleaf orders placed by 2 pm Eastern time on a business
        day leave the Fernleaf warehouse the same day. Gold free express shipping also covers
        replacement items sent under the Fernleaf warranty.

        Fernleaf offers Gold free express shipping to thank members who spend $1,000 or more in a
        calendar year. Gold members also enjoy a 90-day return window and a dedicated Gold Member
        Gear Desk for questions. Free express shipping for Gold members means new gear can reach
        you in time for a last-minute weekend trip.
        """,
    ),
    _doc(
        "FERN-PRM-006",
        "TRAILBACK: Trailhead Plus for $29 Your First Year Back",
        "promotion",
        "At-Risk",
        "win-back, re-engagement, membership, trailhead plus, lapsed, shipping",
        ("2026-08-24", "2027-06-30", "2026-08-20"),
        "/offers/trailback",
        (_MARKETING, "1.0"),
        """
        Returning customers can join Trailhead Plus for $29 for the first year, instead of the
        usual $49, with code TRAILBACK. Code TRAILBACK is valid through 30 June 2027 for
        customers who have not ordered from Fernleaf in the last 90 days.

        Trailhead Plus members get free standard shipping on every order with no minimum and free
        return shipping on online orders. Trailhead Plus also includes 48-hour early access to
        Fernleaf sales and one free Repair Shop service each year, worth up to $40. Trailhead
        Plus members save 10% on every Fernleaf gear rental.

        Trailhead Plus renews at $49 a year after the first year, and you can cancel anytime from
        your Fernleaf account page. The TRAILBACK offer is a simple way to come back to Fernleaf
        with free shipping on everything you order.
        """,
    ),
    _doc(
        "FERN-PRM-007",
        "Tent and Sleep Bundle: Save $75",
        "promotion",
        "Standard",
        "bundle, tent, sleeping bag, camping, value, seasonal",
        ("2026-07-13", "2027-06-30", "2026-07-09"),
        "/offers/tent-and-sleep-bundle",
        (_MARKETING, "1.0"),
        """
        The Fernleaf Tent and Sleep Bundle saves you $75 when you buy any Summit Ridge tent and
        any Fernleaf sleeping bag together. The Tent and Sleep Bundle runs through 30 June 2027,
        and the $75 discount is applied automatically in your cart.

        A Summit Ridge 2 tent at $329 with a Meadow 40 Synthetic Sleeping Bag at $99 costs $353
        with the Tent and Sleep Bundle. A Summit Ridge 4 tent at $479 with an Alpine Loft 20
        sleeping bag at $299 costs $703 with the Tent and Sleep Bundle.

        The Tent and Sleep Bundle is a good time to upgrade an old shelter before the spring and
        summer camping season. You can combine the Tent and Sleep Bundle with Fernleaf Rewards
        credit but not with other discount codes.
        """,
    ),
    _doc(
        "FERN-PRM-008",
        "Fernleaf Rewards Double Points Days",
        "promotion",
        "Standard",
        "loyalty, rewards, points, members, seasonal, value",
        ("2026-10-26", "2027-03-14", "2026-10-22"),
        "/offers/double-points-days",
        (_MARKETING, "1.0"),
        """
        Fernleaf Rewards Double Points Days run from 1 March through 14 March 2027. During Double
        Points Days, Bronze members earn 2 points per dollar, Silver members earn 3 points, and
        Gold members earn 4 points.

        Every 100 Fernleaf Rewards points are worth $5 in Rewards credit toward a future order. A
        $300 purchase during Double Points Days earns a Silver member 900 points, worth $45 in
        Rewards credit. Gold members earn 4 points per dollar during Double Points Days, the
        fastest way to build Fernleaf Rewards credit all year.

        Double Points Days apply online and in Fernleaf stores, and no code is needed when you
        are signed in to your account. Fernleaf Double Points Days are a smart time to stock up
        on seasonal gear you already plan to buy. Points earned during Fernleaf Double Points
        Days appear in your Fernleaf Rewards balance within 2 business days.
        """,
    ),
    _doc(
        "FERN-PRM-009",
        "Refer a Friend: Give $20, Get $20",
        "promotion",
        "All",
        "referral, rewards, community, loyalty, value, friends",
        ("2026-02-16", "2028-06-30", "2026-02-12"),
        "/offers/refer-a-friend",
        (_MARKETING, "1.3"),
        """
        The Fernleaf Refer a Friend program gives your friend $20 off a first order of $75 or
        more. You receive $20 in Fernleaf Rewards credit when your friend's first order ships.
        You can refer up to 10 friends a year through the Fernleaf Refer a Friend program, which
        runs through 30 June 2028.

        Your personal Fernleaf referral link is on your account page, ready to share by email or
        text message. Fernleaf Rewards credit from referrals can be used on any gear, including
        sale items and Summit Series pieces.

        Refer a Friend is a simple way to bring your hiking partners into the Fernleaf
        community. Fernleaf sends you a reminder email when your referral credit is ready to
        use. Friends you refer join Fernleaf Rewards at Bronze tier and start earning points on
        their first order.
        """,
    ),
    _doc(
        "FERN-PRM-010",
        "Spring Trail Sale: 15% Off Boots and Packs",
        "promotion",
        "All",
        "seasonal, spring, sale, boots, packs, offer code",
        ("2026-10-26", "2027-04-30", "2026-10-21"),
        "/offers/spring-trail-sale",
        (_MARKETING, "1.0"),
        """
        The Fernleaf Spring Trail Sale takes 15% off all hiking boots and packs with code
        SPRING15 from 1 April through 30 April 2027. Code SPRING15 covers the Granite Trail Hiking
        Boots, the Cascade 30 Daypack and the Timberline 65 pack.

        With code SPRING15, the Granite Trail Hiking Boots cost $152.15 instead of $179. The
        Cascade 30 Daypack costs $101.15 instead of $119 with code SPRING15. Fernleaf Rewards
        members still earn points on every Spring Trail Sale purchase.

        Spring is a great time to replace worn boots and packs before the long days of summer
        arrive. Fernleaf recommends breaking in new hiking boots on a few short walks before a
        big spring hike. The Fernleaf Size and Fit Guide can help you find the right boot size
        before the Spring Trail Sale begins.
        """,
    ),
    _doc(
        "FERN-PRM-011",
        "Holiday Gift Sale 2025",
        "promotion",
        "All",
        "seasonal, holiday, gifts, sale, offer code, value",
        ("2025-11-03", "2025-12-31", "2025-10-30"),
        "/offers/holiday-gift-sale-2025",
        (_MARKETING, "1.0"),
        """
        The Fernleaf Holiday Gift Sale takes 30% off gifts under $100 with code HOLIDAY30 through
        31 December 2025. Code HOLIDAY30 covers the Emberlight Headlamp, Fernleaf Trail Socks, the
        Canopy Hammock and the Driftwood Camp Chair.

        With code HOLIDAY30, the Emberlight Headlamp costs $27.30 instead of $39. With code
        HOLIDAY30, a Canopy Hammock costs $41.30 instead of $59. Fernleaf gift wrapping is free on
        every Holiday Gift Sale order placed online.

        Holiday Gift Sale orders placed by 18 December 2025 with standard shipping arrive before
        25 December 2025. Fernleaf includes a gift receipt with every Holiday Gift Sale order so
        your recipient can exchange a size or color. The Holiday Gift Sale is a simple way to
        share a love of the outdoors with friends and family.
        """,
    ),
    _doc(
        "FERN-PRM-012",
        "FIRSTLIGHT: A Free Emberlight Headlamp With Your First Order",
        "promotion",
        "New Customer",
        "welcome, first purchase, new customer, gift with purchase, headlamp, offer code",
        ("2026-03-23", "2027-09-30", "2026-03-19"),
        "/offers/firstlight",
        (_MARKETING, "1.1"),
        """
        New customers get a free Emberlight Headlamp, worth $39, with a first Fernleaf order of
        $150 or more using code FIRSTLIGHT. Code FIRSTLIGHT is valid through 30 September 2027
        and can be used once per customer.

        FIRSTLIGHT can be combined with WELCOME15 on the same first order, so you save 15% and
        get the Emberlight Headlamp free. The $150 FIRSTLIGHT minimum is counted before any
        discount is applied. The Emberlight Headlamp puts out up to 400 lumens and recharges by
        USB-C, which makes the Emberlight a handy first piece of camp gear.

        Fernleaf created the FIRSTLIGHT offer so new customers start their first trip with a
        reliable light in the pack. You can enter FIRSTLIGHT at checkout on the Fernleaf website
        or show the code at any Fernleaf store.
        """,
    ),
    # ------------------------------------------------------------------- support
    _doc(
        "FERN-SUP-001",
        "Shipping and Delivery",
        "support",
        "All",
        "shipping, delivery, support, free shipping, orders, express",
        ("2026-01-05", None, "2026-01-02"),
        "/help/shipping",
        (_SUPPORT, "3.0"),
        """
        Fernleaf offers free standard shipping on orders of $75 or more to addresses in the
        United States. Standard shipping on Fernleaf orders under $75 costs $6.95 and arrives in
        3 to 5 business days. Fernleaf express shipping costs $14.95 and arrives in 1 to 2
        business days.

        Fernleaf orders placed by 2 pm Eastern time on a business day leave the warehouse the
        same day. You receive a tracking link by email as soon as your Fernleaf order ships.
        Trailhead Plus members get free standard shipping on every Fernleaf order with no
        minimum.

        Free in-store pickup is available at every Fernleaf store, usually within 2 hours of
        placing your order. The Fernleaf support team can help with a delayed or missing package
        by live chat, seven days a week.
        """,
    ),
    _doc(
        "FERN-SUP-002",
        "Returns and Exchanges",
        "support",
        "All",
        "returns, exchanges, refunds, support, policy, shipping",
        ("2026-01-05", None, "2026-01-02"),
        "/help/returns",
        (_SUPPORT, "2.4"),
        """
        Fernleaf accepts returns of unused items in original condition within 60 days of
        delivery. Gold members of Fernleaf Rewards have an extended 90-day return window on every
        order. Fernleaf exchanges for a different size or color are free and ship as soon as your
        return arrives.

        Return shipping by mail costs $5.95, deducted from your refund, unless you are a
        Trailhead Plus or Gold member. Returns to any Fernleaf store are always free, and
        in-store returns are refunded on the spot. Fernleaf issues mail-in refunds to your
        original payment method within 5 business days of receiving your return.

        Items with a manufacturing defect are handled under the Fernleaf warranty, even after the
        return window has passed. You can start a Fernleaf return from the Orders page of your
        account or with the Fernleaf support team.
        """,
    ),
    _doc(
        "FERN-SUP-003",
        "The Fernleaf Warranty",
        "support",
        "All",
        "warranty, support, quality, repairs, policy, durability",
        ("2026-01-05", None, "2025-12-29"),
        "/help/warranty",
        (_SUPPORT, "2.0"),
        """
        Fernleaf covers tents, packs, sleeping bags and trekking poles with a 5-year warranty
        against defects in materials and workmanship. Fernleaf apparel, footwear and accessories
        carry a 2-year warranty against defects in materials and workmanship. Second Trail
        certified used gear carries a 1-year Fernleaf warranty.

        When a covered item fails because of a defect, Fernleaf will repair the item, replace the
        item or issue store credit. The Fernleaf warranty does not cover normal wear, accidental
        damage or damage from improper care. The Fernleaf Repair Shop can fix wear and tear at a
        fair price when an item falls outside the warranty.

        You can start a Fernleaf warranty claim online with your order number and a photo of the
        issue. Most Fernleaf warranty claims are reviewed within 7 business days.
        """,
    ),
    _doc(
        "FERN-SUP-004",
        "Fernleaf Rewards: Tiers and Points",
        "support",
        "Standard",
        "loyalty, rewards, points, tiers, members, value",
        ("2026-02-02", None, "2026-01-28"),
        "/help/rewards",
        (_SUPPORT, "1.6"),
        """
        Fernleaf Rewards is free to join and has three tiers: Bronze, Silver and Gold. Bronze
        members earn 1 point per dollar, Silver members earn 1.5 points per dollar, and Gold
        members earn 2 points per dollar. Every 100 Fernleaf Rewards points are worth $5 in
        Rewards credit toward a future order.

        You reach Silver tier by spending $500 with Fernleaf in a calendar year, and Gold tier by
        spending $1,000. Silver members get a birthday reward of $10 in Rewards credit, and Gold
        members get a $25 birthday reward. Gold members also get a 90-day return window and
        48-hour early access to Fernleaf sales.

        Fernleaf Rewards points expire after 18 months without any account activity, such as a
        purchase or a product review. You can check your tier, points and Rewards credit at any
        time on your Fernleaf account page.
        """,
    ),
    _doc(
        "FERN-SUP-005",
        "Trailhead Plus Membership",
        "support",
        "All",
        "membership, trailhead plus, shipping, repairs, loyalty, value",
        ("2026-02-02", None, "2026-01-30"),
        "/help/trailhead-plus",
        (_SUPPORT, "1.2"),
        """
        Trailhead Plus is the paid Fernleaf membership, and Trailhead Plus costs $49 a year.
        Trailhead Plus members get free standard shipping on every order, with no minimum order
        amount. Trailhead Plus members also get free return shipping on online orders. Standard
        shipping on orders under $75 costs $6.95 without Trailhead Plus, so frequent shoppers
        recover the membership fee quickly.

        Trailhead Plus includes one free Fernleaf Repair Shop service each year, worth up to
        $40. Trailhead Plus members get 48-hour early access to Fernleaf seasonal sales and 10%
        off every gear rental.

        Trailhead Plus works alongside Fernleaf Rewards, so you keep earning points at your
        Bronze, Silver or Gold tier. You can join or cancel Trailhead Plus anytime from your
        Fernleaf account page, and the membership renews yearly.
        """,
    ),
    _doc(
        "FERN-SUP-006",
        "Your First Fernleaf Order: Getting Started",
        "support",
        "New Customer",
        "onboarding, welcome, new customer, first purchase, account, support",
        ("2026-02-23", None, "2026-02-19"),
        "/help/getting-started",
        (_SUPPORT, "1.0"),
        """
        Creating a Fernleaf account takes about a minute and lets you track orders, save sizes
        and collect Fernleaf Rewards points. New Fernleaf accounts join Fernleaf Rewards at
        Bronze tier automatically, earning 1 point per dollar from your first purchase.

        Your first Fernleaf order ships free with standard shipping when the order total is $75
        or more. You get a confirmation email right after checkout and a tracking link as soon
        as your Fernleaf order ships. Unused Fernleaf items can be returned within 60 days of
        delivery, so you can try gear at home first.

        The Fernleaf support team answers questions by live chat and phone from 8 am to 8 pm
        Eastern time, seven days a week. Fernleaf store staff can help you choose gear in person
        and fit packs and boots for free. The Fernleaf Trail Guides page has beginner articles
        on choosing a tent, packing a daypack and planning your first hike.
        """,
    ),
    _doc(
        "FERN-SUP-007",
        "Size and Fit Guide",
        "support",
        "New Customer",
        "sizing, fit, onboarding, new customer, footwear, apparel, support",
        ("2026-03-09", None, "2026-03-05"),
        "/help/size-and-fit",
        (_SUPPORT, "1.3"),
        """
        The Fernleaf Size and Fit Guide helps you choose the right size the first time for boots,
        jackets and packs. For Fernleaf boots, measure your feet in the evening and leave about a
        thumb's width of space at the toe. Granite Trail Hiking Boots come in men's sizes 7 to 14
        and women's sizes 5 to 12, including half sizes.

        Fernleaf jackets such as the Stormline Rain Jacket are sized to fit over a base layer and
        a fleece. If you plan to layer heavily, check the chest measurement on each Fernleaf
        product page before you order. For packs like the Timberline 65, measure your torso from
        the base of your neck to the top of your hip bones.

        Exchanges for a different size are free at Fernleaf, so you can swap sizes without extra
        cost. The Fernleaf support team can walk you through sizing by live chat if you are
        between sizes.
        """,
    ),
    _doc(
        "FERN-SUP-008",
        "Fernleaf Repair Shop",
        "support",
        "At-Risk",
        "repairs, gear care, support, sustainability, re-engagement, win-back",
        ("2026-05-18", None, "2026-05-14"),
        "/help/repair-shop",
        (_SUPPORT, "1.1"),
        """
        The Fernleaf Repair Shop can bring your favorite older gear back into service, whether
        you bought it last year or a decade ago. Fernleaf Repair Shop zipper replacements start
        at $25, tent pole repairs start at $20, and seam resealing starts at $30. Most Fernleaf
        Repair Shop jobs are finished within 10 business days of arrival.

        You can drop gear at any Fernleaf store or mail it in with a prepaid label from your
        Fernleaf account. Trailhead Plus members get one free Fernleaf Repair Shop service each
        year, worth up to $40. The Fernleaf Repair Shop also services tents and jackets from
        other brands at the same prices.

        Repairing your gear keeps your favorite pieces on the trail longer and is one of the
        simplest ways to reduce waste outdoors. When an old item is beyond repair, Second Trail
        can offer Fernleaf credit toward something new.
        """,
    ),
    _doc(
        "FERN-SUP-009",
        "Gold Member Gear Desk",
        "support",
        "High-Value Recent",
        "vip, gold, premium, support, loyalty, concierge",
        ("2026-05-18", None, "2026-05-15"),
        "/help/gold-gear-desk",
        (_SUPPORT, "1.0"),
        """
        The Gold Member Gear Desk is a dedicated Fernleaf support line for Gold members of
        Fernleaf Rewards. Gold Member Gear Desk specialists answer calls and chats from 7 am to
        10 pm Eastern time, every day of the year. Gold members skip the general queue and
        usually reach a Gear Desk specialist in under two minutes.

        Gear Desk specialists can plan a full kit for your next trip, from a Summit Series
        sleeping bag to the right trekking poles. The Gold Member Gear Desk fast-tracks warranty
        claims for Gold members, with most decisions made within 2 business days. Gold members
        have a 90-day return window, and the Gold Member Gear Desk can start a return for you by
        phone.

        Fernleaf created the Gold Member Gear Desk to thank customers who spend $1,000 or more
        with Fernleaf in a calendar year. You can reach the Gold Member Gear Desk from the Gold
        section of your Fernleaf account page.
        """,
    ),
    _doc(
        "FERN-SUP-010",
        "Your Fernleaf Rewards Points Are Waiting",
        "support",
        "At-Risk",
        "win-back, re-engagement, loyalty, rewards, points, lapsed",
        ("2026-08-24", None, "2026-08-19"),
        "/help/rewards-points-waiting",
        (_SUPPORT, "1.0"),
        """
        Your Fernleaf Rewards points stay on your account even if you have not shopped with
        Fernleaf for a while. Fernleaf Rewards points expire only after 18 months without any
        account activity, such as a purchase or a product review. Every 100 Fernleaf Rewards
        points are worth $5 in Rewards credit toward your next order.

        Placing any order, writing a product review or updating your preferences resets the
        18-month Fernleaf Rewards clock. You can see your current points balance and expiry date
        on the Rewards page of your Fernleaf account.

        Fernleaf Rewards credit can be used on any gear, including new arrivals and sale items.
        Your Fernleaf Rewards tier is reviewed each calendar year, so an order now also counts
        toward reaching Silver or Gold.
        """,
    ),
    _doc(
        "FERN-SUP-011",
        "Fernleaf Gear Rental",
        "support",
        "Standard",
        "rental, try before you buy, camping, tent, value, support",
        ("2026-06-22", None, "2026-06-18"),
        "/help/gear-rental",
        (_SUPPORT, "1.1"),
        """
        Fernleaf Gear Rental lets you try quality gear before you buy, with pickup and return at
        any Fernleaf store. Renting a Summit Ridge 2 tent from Fernleaf costs $35 per weekend,
        and renting an Alpine Loft 20 sleeping bag costs $25 per weekend. Fernleaf rental
        weekends run from Friday pickup to Monday return.

        If you buy the same item within 30 days, Fernleaf credits your rental fee toward the
        purchase price. Every Fernleaf rental item is cleaned, inspected and packed with setup
        instructions before each trip. Trailhead Plus members save 10% on every Fernleaf gear
        rental.

        Fernleaf Gear Rental is a smart way to test a tent or sleeping bag on a real trip before
        you commit to buying. You can reserve Fernleaf rental gear online up to 60 days ahead of
        your trip.
        """,
    ),
    _doc(
        "FERN-SUP-012",
        "Fernleaf Price Match Promise",
        "support",
        "All",
        "price match, value, savings, support, policy, shopping",
        ("2026-04-13", None, "2026-04-09"),
        "/help/price-match",
        (_SUPPORT, "1.0"),
        """
        Fernleaf will match a lower advertised price on an identical item from an authorized US
        retailer. The Fernleaf Price Match Promise applies before purchase and for 14 days after
        your purchase date. To request a price match, contact the Fernleaf support team with a
        link to the lower price.

        The Fernleaf Price Match Promise covers Fernleaf-brand gear and the other brands Fernleaf
        sells in stores and online. Fernleaf price matches exclude clearance items, auction
        sites, membership warehouse prices and bundled offers.

        When a Fernleaf item drops in price within 14 days of your purchase, Fernleaf refunds the
        difference to your original payment method. The Fernleaf Price Match Promise lets you
        shop with confidence that you are paying a fair price. Fernleaf Rewards members keep the
        points earned on the original purchase after a price match.
        """,
    ),
)


def document_records() -> list[dict[str, Any]]:
    """Return every document as a JSON-ready record, in document-id order."""
    return [spec.to_record() for spec in sorted(DOCUMENTS, key=lambda s: s.document_id)]


def render_record(record: dict[str, Any]) -> str:
    """Return the exact JSON text written for one record (trailing newline included)."""
    return json.dumps(record, ensure_ascii=False, indent=2) + "\n"


def write_content(out_dir: Path) -> list[Path]:
    """Write one ``<document_id>.json`` per document into ``out_dir``.

    The output is deterministic: UTF-8, two-space indent, keys in
    :data:`RECORD_KEYS` order, ``\\n`` line endings and a trailing newline.
    Other files in ``out_dir`` are left alone.

    Returns:
        The written paths, in document-id order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for record in document_records():
        path = out_dir / f"{record['document_id']}.json"
        path.write_bytes(render_record(record).encode("utf-8"))
        paths.append(path)
    return paths


def main() -> None:  # pragma: no cover - maintenance entry point
    """Regenerate the bundled content files in the package tree.

    The control message is not sample data: ``prompts/control_message.txt`` is a
    brand-neutral template filled from the config's ``brand:`` section.
    """
    data = Path(__file__).resolve().parent.parent / "data"
    for path in write_content(data / "sample" / "content"):
        print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
