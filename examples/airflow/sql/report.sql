-- daily report for {{ ds }}
SELECT region, SUM(amount) AS total
FROM {{ params.table }}
WHERE day = '{{ ds }}' AND env = '{{ env_name }}'
GROUP BY region
