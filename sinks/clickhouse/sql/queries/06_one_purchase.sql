-- One purchase, as it stands now (FINAL keeps its latest version), with the
-- raw events behind it. Filter on site first: it leads the sort key.
SELECT site, order_number, registered_via, matched, email, subtotal, currency,
       registered_at, updated_at, version
FROM purchases FINAL
WHERE site = 'example-store' AND order_number = '5837291049'
