"""Writes the translation demo's data: lexicon.tsv, corpus.txt (the Spanish text the language model
learns from) and test.tsv (held-out English → Spanish pairs). Deterministic; run it again after
changing the grammar below:

    python3 Demos/Translation/data/generate.py
"""

from __future__ import annotations

import itertools
import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent

# English noun → (Spanish singular, Spanish plural, gender), with the English plural.
NOUNS = {
    "cat": ("cats", "gato", "gatos", "m"), "dog": ("dogs", "perro", "perros", "m"),
    "house": ("houses", "casa", "casas", "f"), "car": ("cars", "coche", "coches", "m"),
    "table": ("tables", "mesa", "mesas", "f"), "book": ("books", "libro", "libros", "m"),
    "window": ("windows", "ventana", "ventanas", "f"), "girl": ("girls", "niña", "niñas", "f"),
    "boy": ("boys", "niño", "niños", "m"), "city": ("cities", "ciudad", "ciudades", "f"),
    "river": ("rivers", "río", "ríos", "m"), "woman": ("women", "mujer", "mujeres", "f"),
    "man": ("men", "hombre", "hombres", "m"), "tree": ("trees", "árbol", "árboles", "m"),
    "flower": ("flowers", "flor", "flores", "f"), "bird": ("birds", "pájaro", "pájaros", "m"),
    "door": ("doors", "puerta", "puertas", "f"), "letter": ("letters", "carta", "cartas", "f"),
    "garden": ("gardens", "jardín", "jardines", "m"), "street": ("streets", "calle", "calles", "f"),
    "horse": ("horses", "caballo", "caballos", "m"), "cow": ("cows", "vaca", "vacas", "f"),
    "chair": ("chairs", "silla", "sillas", "f"), "bed": ("beds", "cama", "camas", "f"),
    "friend": ("friends", "amigo", "amigos", "m"), "teacher": ("teachers", "maestra", "maestras", "f"),
    "train": ("trains", "tren", "trenes", "m"), "boat": ("boats", "barco", "barcos", "m"),
    "mountain": ("mountains", "montaña", "montañas", "f"), "road": ("roads", "camino", "caminos", "m"),
    "lamp": ("lamps", "lámpara", "lámparas", "f"), "box": ("boxes", "caja", "cajas", "f"),
    "key": ("keys", "llave", "llaves", "f"), "shoe": ("shoes", "zapato", "zapatos", "m"),
    "apple": ("apples", "manzana", "manzanas", "f"), "star": ("stars", "estrella", "estrellas", "f"),
    "wall": ("walls", "pared", "paredes", "f"), "bridge": ("bridges", "puente", "puentes", "m"),
    "field": ("fields", "campo", "campos", "m"), "school": ("schools", "escuela", "escuelas", "f"),
    "bottle": ("bottles", "botella", "botellas", "f"), "cup": ("cups", "taza", "tazas", "f"),
    "plate": ("plates", "plato", "platos", "m"), "kitchen": ("kitchens", "cocina", "cocinas", "f"),
    "room": ("rooms", "habitación", "habitaciones", "f"), "cloud": ("clouds", "nube", "nubes", "f"),
    "moon": ("moons", "luna", "lunas", "f"), "pen": ("pens", "pluma", "plumas", "f"),
    "hat": ("hats", "sombrero", "sombreros", "m"), "coat": ("coats", "abrigo", "abrigos", "m"),
    "shirt": ("shirts", "camisa", "camisas", "f"), "island": ("islands", "isla", "islas", "f"),
    "forest": ("forests", "bosque", "bosques", "m"), "lake": ("lakes", "lago", "lagos", "m"),
    "wolf": ("wolves", "lobo", "lobos", "m"), "mouse": ("mice", "ratón", "ratones", "m"),
    "duck": ("ducks", "pato", "patos", "m"), "pig": ("pigs", "cerdo", "cerdos", "m"),
    "goat": ("goats", "cabra", "cabras", "f"), "hen": ("hens", "gallina", "gallinas", "f"),
    "doctor": ("doctors", "médico", "médicos", "m"), "king": ("kings", "rey", "reyes", "m"),
    "queen": ("queens", "reina", "reinas", "f"), "clock": ("clocks", "reloj", "relojes", "m"),
    "picture": ("pictures", "cuadro", "cuadros", "m"), "church": ("churches", "iglesia", "iglesias", "f"),
    "tower": ("towers", "torre", "torres", "f"), "village": ("villages", "pueblo", "pueblos", "m"),
}
# Words with two senses, told apart by a neighbour: each sense's neighbour takes a different article ("banco de la ciudad", "orilla del río"), so a
# bigram language model can tell the senses apart, but only once it has seen that article.
AMBIGUOUS = {
    "bank": [("banco", "bancos", "m", "city"), ("orilla", "orillas", "f", "river")],
    "glass": [("vaso", "vasos", "m", "kitchen"), ("cristal", "cristales", "m", "car")],
    "plant": [("planta", "plantas", "f", "garden"), ("fábrica", "fábricas", "f", "street")],
    "bat": [("murciélago", "murciélagos", "m", "forest"), ("bate", "bates", "m", "school")],
    "court": [("corte", "cortes", "f", "king"), ("cancha", "canchas", "f", "school")],
}
# English adjective → Spanish forms (m sg, f sg, m pl, f pl).
ADJECTIVES = {
    "black": ("negro", "negra", "negros", "negras"), "white": ("blanco", "blanca", "blancos", "blancas"),
    "red": ("rojo", "roja", "rojos", "rojas"), "small": ("pequeño", "pequeña", "pequeños", "pequeñas"),
    "old": ("viejo", "vieja", "viejos", "viejas"), "new": ("nuevo", "nueva", "nuevos", "nuevas"),
    "beautiful": ("hermoso", "hermosa", "hermosos", "hermosas"), "tall": ("alto", "alta", "altos", "altas"),
    "big": ("grande", "grande", "grandes", "grandes"), "green": ("verde", "verde", "verdes", "verdes"),
    "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"), "quiet": ("tranquilo", "tranquila", "tranquilos", "tranquilas"),
    "dark": ("oscuro", "oscura", "oscuros", "oscuras"), "cold": ("frío", "fría", "fríos", "frías"),
    "happy": ("feliz", "feliz", "felices", "felices"), "blue": ("azul", "azul", "azules", "azules"),
    "long": ("largo", "larga", "largos", "largas"), "short": ("corto", "corta", "cortos", "cortas"),
    "warm": ("cálido", "cálida", "cálidos", "cálidas"), "clean": ("limpio", "limpia", "limpios", "limpias"),
    "dirty": ("sucio", "sucia", "sucios", "sucias"), "strong": ("fuerte", "fuerte", "fuertes", "fuertes"),
    "young": ("joven", "joven", "jóvenes", "jóvenes"), "rich": ("rico", "rica", "ricos", "ricas"),
    "poor": ("pobre", "pobre", "pobres", "pobres"), "empty": ("vacío", "vacía", "vacíos", "vacías"),
}
# English verb (3rd singular, plural) → Spanish (3rd singular, plural).
VERBS = {
    ("sleeps", "sleep"): ("duerme", "duermen"), ("runs", "run"): ("corre", "corren"),
    ("falls", "fall"): ("cae", "caen"), ("waits", "wait"): ("espera", "esperan"),
    ("shines", "shine"): ("brilla", "brillan"), ("sings", "sing"): ("canta", "cantan"),
    ("plays", "play"): ("juega", "juegan"), ("rests", "rest"): ("descansa", "descansan"),
    ("walks", "walk"): ("camina", "caminan"), ("swims", "swim"): ("nada", "nadan"),
    ("laughs", "laugh"): ("ríe", "ríen"), ("dances", "dance"): ("baila", "bailan"),
}
TRANSITIVE = {("sees", "see"): ("ve", "ven"), ("finds", "find"): ("encuentra", "encuentran"),
              ("likes", "like"): ("quiere", "quieren"), ("paints", "paint"): ("pinta", "pintan"),
              ("opens", "open"): ("abre", "abren"), ("carries", "carry"): ("lleva", "llevan"),
              ("buys", "buy"): ("compra", "compran"), ("watches", "watch"): ("mira", "miran"),
              ("breaks", "break"): ("rompe", "rompen")}
# Prepositions, some of them two Spanish words.
PREPOSITIONS = {"in": ["en"], "on": ["sobre"], "near": ["cerca", "de"], "under": ["bajo"],
                "behind": ["detrás", "de"], "with": ["con"]}


def article(gender: str, plural: bool) -> str:
    return {("m", False): "el", ("f", False): "la", ("m", True): "los", ("f", True): "las"}[(gender, plural)]


def adjective(english: str, gender: str, plural: bool) -> str:
    forms = ADJECTIVES[english]
    return forms[(2 if plural else 0) + (1 if gender == "f" else 0)]


def noun_phrases():
    """(english words, spanish words, plural) for 'the [adj] noun' in every form."""
    for english, (plural_en, singular_es, plural_es, gender) in NOUNS.items():
        for plural in (False, True):
            noun_en, noun_es = (plural_en, plural_es) if plural else (english, singular_es)
            yield [ "the", noun_en], [article(gender, plural), noun_es], plural
            for adj in ADJECTIVES:
                yield ["the", adj, noun_en], [article(gender, plural), noun_es, adjective(adj, gender, plural)], plural


def sentences(rng: random.Random):
    """Endless (english, spanish) pairs from a small grammar: Spanish puts adjectives after nouns,
    and articles and adjectives agree with the noun's gender and number."""
    phrases = list(noun_phrases())
    while True:
        subject_en, subject_es, plural = rng.choice(phrases)
        shape = rng.random()
        if shape < 0.4:
            (verb_en, verb_es) = rng.choice(list(VERBS.items()))
            english = subject_en + [verb_en[1 if plural else 0]]
            spanish = subject_es + [verb_es[1 if plural else 0]]
        elif shape < 0.7:
            (verb_en, verb_es) = rng.choice(list(TRANSITIVE.items()))
            object_en, object_es, _ = rng.choice(phrases)
            english = subject_en + [verb_en[1 if plural else 0]] + object_en
            spanish = subject_es + [verb_es[1 if plural else 0]] + object_es
        else:
            (verb_en, verb_es) = rng.choice(list(VERBS.items()))
            preposition = rng.choice(list(PREPOSITIONS))
            place_en, place_es, _ = rng.choice(phrases)
            english = subject_en + [verb_en[1 if plural else 0], preposition] + place_en
            spanish = subject_es + [verb_es[1 if plural else 0]] + contract(PREPOSITIONS[preposition] + place_es)
        # Two sentences in five use an ambiguous noun, whose sense follows from a neighbour.
        if rng.random() < 0.4:
            word = rng.choice(list(AMBIGUOUS))
            sense = rng.choice(AMBIGUOUS[word])
            singular_es, _, gender, context = sense
            english = english + ["near", "the", word, "of", "the", context]
            context_es = NOUNS[context][1]
            spanish = spanish + contract(["cerca", "de", article(gender, False), singular_es, "de", article(NOUNS[context][3], False), context_es])
        yield " ".join(english), " ".join(spanish)


def contract(words: list[str]) -> list[str]:
    """Spanish contracts "de el" to "del"."""
    out: list[str] = []
    for word in words:
        if word == "el" and out and out[-1] == "de":
            out[-1] = "del"
        else:
            out.append(word)
    return out


def lexicon() -> list[tuple[str, str, float]]:
    """English word → Spanish word, P(spanish | english): every form equally likely, so that only
    the language model can choose gender, number and sense."""
    entries: list[tuple[str, str, float]] = []
    for word in ["el", "la", "los", "las"]:
        entries.append(("the", word, 0.25))
    for english, (plural_en, singular_es, plural_es, _) in NOUNS.items():
        entries += [(english, singular_es, 1.0), (plural_en, plural_es, 1.0)]
    for word, senses in AMBIGUOUS.items():
        for singular_es, _, _, _ in senses:
            entries.append((word, singular_es, 1 / len(senses)))
    for english, forms in ADJECTIVES.items():
        distinct = sorted(set(forms))
        entries += [(english, form, 1 / len(distinct)) for form in distinct]
    for (singular_en, plural_en), (singular_es, plural_es) in itertools.chain(VERBS.items(), TRANSITIVE.items()):
        entries += [(singular_en, singular_es, 1.0), (plural_en, plural_es, 1.0)]
    # Prepositions: with "the", as two-word phrases, since Spanish contracts "de el" to "del".
    for english, spanish in list(PREPOSITIONS.items()) + [("of", ["de"])]:
        for form in ["el", "la", "los", "las"]:
            entries.append((f"{english} the", " ".join(contract(spanish + [form])), 0.25))
    return entries


def main() -> None:
    rng = random.Random(2026)
    generator = sentences(rng)
    corpus: list[str] = []
    seen: set[str] = set()
    while len(corpus) < 20000:
        _, spanish = next(generator)
        corpus.append(spanish)
        seen.add(spanish)
    test: list[tuple[str, str]] = []
    while len(test) < 80:
        english, spanish = next(generator)
        if spanish not in seen and (english, spanish) not in test:
            test.append((english, spanish))
    (HERE / "lexicon.tsv").write_text("".join(f"{e}\t{s}\t{p:.6f}\n" for e, s, p in lexicon()))
    (HERE / "corpus.txt").write_text("\n".join(corpus) + "\n")
    (HERE / "test.tsv").write_text("".join(f"{e}\t{s}\n" for e, s in test))


if __name__ == "__main__":
    main()
