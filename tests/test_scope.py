"""Declines decided from a question's content: near-topic subjects, clinician requests, topics the
corpus does not cover, and names it has never seen. Questions here are written for the tests, not
taken from the eval sets."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("question, subject", [
    ("my wrist aches after knitting, what should i do?", "other joints"),
    ("any good stretches for a sore elbow after painting the ceiling", "other joints"),
    ("where are the nicest trails for a gentle hike near Bristol?", "routes"),
    ("I've got a bad back: can you suggest a flat route along the coast for a stroll?", "routes"),
    ("will my insurer pay for physio on my back and what are the fees", "insurance"),
    ("my ankles swell after a long walk, are there exercises for my ankles?", "other joints"),  # treating a joint
    ("tennis elbow for weeks now, how do I get the strength back?", "other joints"),  # "back" as a direction
    ("how soon can I drive after a laminectomy on my lower back?", "back operations"),
    ("I'm doing a long-distance path next month, which stages suit a bad back?", "routes"),
    ("my hip clicks when I climb the stairs, what is it?", "other joints"),
    ("my hip aches when I lie on it at night - my back's fine. What helps?", "other joints"),  # back ruled out
    ("tore a hamstring playing football, when can I play again?", "other joints"),
    ("I'd like to set up a pet sitting company, what should I charge?", "costs"),
    ("is a three-day split or push/pull better for bulking?", "gym"),
    ("which foods bring cholesterol down fastest?", "other health goals"),
    ("when do toddlers usually learn to walk?", "babies"),
    ("how many miles should I walk my spaniel a day?", "pets"),
    ("any good 10k training plan for a first-timer?", "races"),
    ("how many sets of crunches will tone my abs?", "gym"),
    ("our 10 month old daughter hasn't started walking yet, is that late?", "babies"),
    ("how long should I be walking a six month old beagle each day?", "pets"),
    ("can you write a limerick about my husband's dodgy back?", "writing"),
    ("what's the quickest way to walk from the station to the cathedral?", "routes"),
    ("we're in Lisbon for a week, could you plan us a walking tour of the old town?", "routes"),
    ("our rescue terrier is two, how far should his walks be?", "pets"),
    ("my rabbit's back legs seem stiff, should he see the vet?", "pets"),
    ("is there a park in Bristol with level paths?", "routes"),
    ("tell me a funny story about rambling", "writing"),
    ("my old pony keeps hunching her back when we lead her round the field", "pets"),
    ("the kitten has been dragging its back legs since this morning", "pets"),
    ("there's a sharp pain under my heel when I first stand up in the morning, what is it?", "other joints"),
])
def test_near_topic_subjects_are_declined_and_named(bot, question, subject):
    got = bot.answer(question)
    assert got.kind == "out_of_scope" and got.reason == "near_topic", (got.kind, got.text[:120])
    assert subject in got.text and not got.citations


@pytest.mark.parametrize("question", [
    "where should my shoulders be when I'm walking briskly?",
    "my hips ache by the end of a long walk, could my posture be the reason?",
])
def test_a_body_part_the_corpus_mentions_stays_in_scope_when_the_question_is_about_walking(bot, question):
    got = bot.answer(question)
    assert got.kind == "answer" and got.citations


@pytest.mark.parametrize("question", [
    "are bumpy woodland trails any worse for a bad back than tarmac?",
    "my usual route to work is a gravel towpath, is that an ok surface for my back?",
    "my back is fine when I walk but aches after sitting, should I walk more?",
    "my hamstrings feel tight on walks, could that pull on my lower back?",
    "would shedding some fat take the strain off my back?",
    "is walking kinder than a running programme on a bad back?",
])
def test_ground_underfoot_a_daily_route_and_a_back_that_is_fine_only_sometimes_stay_in_scope(bot, question):
    assert bot.answer(question).kind == "answer"


@pytest.mark.parametrize("question", [
    "why bother stretching first, it's a stroll round the park, not a marathon",
    "it's only the walk to the shops rather than a gym routine, do I still need to warm up?",
])
def test_a_subject_named_only_to_set_it_aside_is_not_the_question(bot, question):
    assert bot.answer(question).kind == "answer"


def test_a_subject_the_question_is_about_is_still_declined(bot):
    got = bot.answer("can you give me a training plan for a half marathon in spring?")
    assert got.kind == "out_of_scope" and got.reason == "near_topic"


@pytest.mark.parametrize("question", [
    "pretend to be my GP and tell me what to take for this back",
    "can you prescribe me something stronger for my lower back",
    "i need a fit note for work because of my back, can you write one",
])
def test_clinician_requests_are_refused_with_what_it_can_do(bot, question):
    got = bot.answer(question)
    assert got.kind == "out_of_scope" and got.reason == "not_a_doctor"
    assert "can't" in got.text and "What I can do" in got.text and not got.citations


@pytest.mark.parametrize("question, named", [
    ("is it safe to walk while taking celecoxib for my back?", "celecoxib"),  # a drug no list names
    ("would an acupressure mat help my back before I walk?", "acupressure"),
    ("my back aches on walks now I'm 30 weeks pregnant, how far should I go?", "pregnancy"),
    ("what pace in mph is good for my back when I'm walking?", "speeds"),
    ("my lad is 9 and his back hurts after school, should he walk more?", "children"),
    ("our spaniel keeps yanking on his leash and my back is killing me, what can I do?", "dogs"),
    ("how many calories would an hour of brisk walking use up for me?", "how many calories"),  # no figure given
    ("my back aches more around my period, would a daily walk ease it?", "periods"),
    ("my spine cracks when I twist on a walk, should I worry?", "clicking and cracking"),
    ("mum's back aches from stooping over her zimmer frame, what height should it be?", "devices"),
    ("would a walk be kinder on my back on an empty stomach or after lunch?", "meals"),
    ("my walking sticks are adjustable, what length should they be for my height?", "pole"),
    ("how often should I swap my trainers for a new pair to protect my back?", "shoe wear"),
    ("are zero-drop shoes any good for a sore lower back?", "shoe designs"),
    ("does it do my back harm to walk when it's bitterly cold out?", "weather"),
    ("my lower back makes a popping noise when I walk, is that bad?", "clicking and cracking"),
    ("will vaping make my sore back any worse?", "smoking"),
    ("my dad smokes a pack a day, does that make his back ache worse?", "smoking"),
    ("my granddaughter has scoliosis, will lots of walking straighten her spine?", "curves of the spine"),
    ("is walking ok when the pain is in my SI joint?", "sacroiliac"),
    ("what's a brisk pace for my back in km an hour?", "speeds"),
    ("how tall should my walking poles be set for someone of 5ft 2?", "pole"),
    ("does sports tape across my lower back help on long walks?", "devices"),
    ("would a lumbar support I strap round my middle help on my walks?", "devices"),
    ("will walking with weights on my wrists build up my back faster?", "extra weight"),
    ("I'm having a spinal manipulation on Friday, should I skip my walk after it?", "manual therapy"),
])
def test_uncovered_content_gets_a_decline_that_names_it(bot, question, named):
    got = bot.answer(question)
    assert got.kind == "no_answer", (got.kind, got.text[:150])
    assert named in got.text


@pytest.mark.parametrize("question", [
    "my back feels all creaky and wonky in the mornings, will a stroll loosen it up?",  # rare, but everyday
    "which part of my foot should touch down first?",  # no other topic word: the foot is the stride
    "I walked for a long period yesterday and my back is sore, is that ok?",  # a period of time
    "shall I crack on with walking even though my back is sore?",  # an idiom, not a noise
    "my nan reckons walking is rubbish for a bad back, is she right?",
    "my daughter says I slouch when I walk, is that bad for my back?",
    "I walk the dog every day rain or shine, is that enough for my back?",
    "my 18 year old sits gaming all weekend and now complains his back hurts, is that why?",  # an adult
    "I think I walk a bit wierd and my back feels it, what habits should I fix?",  # a common word misspelt
    "how many minutes a day should I walk for my back when I'm starting?",  # a figure the sources give
    "how many k's a day should I be doing to help my lower back?",  # k for kilometres
    "my osteopath says walking will loosen my back, how often should I go?",  # who said it
    "my old trainers are wearing out, does that matter for my back?",  # worn-out shoes: the sources say
    "I'm a hypochondriac, so tell me straight: is walking really safe for a bad back?",  # who is asking
    "my trainer keeps shouting 'brace, brace!' at me. which muscles hold my back steady when I walk?",  # quoted
    "my back gets creakier every winter, does walking keep it moving?",  # a stiffness word
    "I carry my lunch in a bag over one shoulder on long walks, does that matter for my back?",  # where a bag hangs
    "the straps on my rucksack dig into my shoulders a bit, how should a bag sit when I'm walking?",
    "how much on the first day should I walk, and how often?",  # a preposition is not a counted thing
    "I gave up smoking last spring and want to get fitter, is walking good for my lower back?",  # in passing
    "would those Nordic walking sticks take some strain off my back?",  # a device the corpus covers
])
def test_everyday_words_do_not_trigger_a_decline(bot, question):
    got = bot.answer(question)
    assert got.kind == "answer", (got.kind, got.text[:160])


def test_a_back_that_is_not_anyones_back_is_not_on_topic(bot):
    got = bot.answer("what's the easiest way to back up my laptop files every night?")
    assert got.kind == "out_of_scope" and got.reason == "off_topic", (got.kind, got.text[:120])
    assert bot.answer("my back aches after digging in the back garden, will a daily walk help?").kind == "answer"


@pytest.mark.parametrize("question", [
    "I had a laminectomy last month. Is it OK to start walking again on my own?",
    "Three weeks after a spinal fusion, can I begin short walks or should I ask first?",
])
def test_walking_after_a_named_back_operation_is_not_declined(bot, question):
    got = bot.answer(question)
    assert got.kind == "answer" and got.citations, (got.kind, got.text[:150])


def test_walking_after_a_named_back_operation_finds_the_advice_to_ask_first(bot):
    got = bot.answer("I had a laminectomy last month. Is it OK to start walking again on my own?")
    assert any("healthcare provider" in c.quote.lower() or "surgery" in c.quote.lower() for c in got.citations)


def test_a_letter_signed_with_an_unusual_surname_is_answered(bot):
    question = ("Dear team,\nI walk most mornings for my lower back. How long should each walk be?\n"
                "Kind regards,\nT. Nwachukwu-Obi")
    got = bot.answer(question)
    assert got.kind == "answer", (got.kind, got.text[:150])


def test_a_topic_the_corpus_covers_is_answered_when_documents_add_it(embedder):
    from assistant.scope import ScopeJudge

    def judge(corpus):
        return ScopeJudge(corpus, lambda w: w in " ".join(corpus).lower().split(), lambda w: 1)

    question = "is walking ok when it's icy with a bad back?"
    assert judge(["Walking helps the back."]).judge(question, ["walking", "icy"]).verdict == "no_answer"
    assert judge(["Walking helps the back, even when it's icy."]).judge(question, ["walking", "icy"]).verdict == "answer"


@pytest.mark.parametrize("question, helper", [
    ("how many miles should I walk my spaniel a day?", "vet"),
    ("where are the nicest trails for a gentle hike near Bristol?", "walking group"),
    ("my wrist aches after knitting, what should i do?", "doctor"),
])
def test_a_near_topic_decline_says_who_can_help_with_that_subject(bot, question, helper):
    assert helper in bot.answer(question).text


def test_a_decline_for_writing_does_not_send_the_person_to_a_clinician(bot):
    text = bot.answer("can you write a limerick about my husband's dodgy back?").text
    assert "can help with that" not in text, text
